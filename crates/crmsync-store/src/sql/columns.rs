//! Storage columns of attributes and the bind/read layouts of statements.

use crmsync_model::{AttributeMetadata, AttributeName, AttributeType, EntityMetadata, ModelError};

use super::{Dialect, quote};

/// How one storage column holds its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    Text,
    Int32,
    Int64,
    Decimal,
    Double,
    Bool,
    DateTime,
    Guid,
    /// The `__type` column of a lookup: the target entity's logical name.
    EntityName,
}

impl Storage {
    pub fn sql_type(&self, dialect: Dialect) -> &'static str {
        match (dialect, self) {
            (Dialect::Sqlite, Storage::Text) => "TEXT COLLATE NOCASE",
            (Dialect::Sqlite, Storage::Int32 | Storage::Int64 | Storage::Bool | Storage::DateTime) => {
                "INTEGER"
            }
            (Dialect::Sqlite, Storage::Decimal | Storage::EntityName) => "TEXT",
            (Dialect::Sqlite, Storage::Double) => "REAL",
            (Dialect::Sqlite, Storage::Guid) => "BLOB",
            (Dialect::Postgres, Storage::Text | Storage::EntityName) => "text",
            (Dialect::Postgres, Storage::Int32) => "integer",
            (Dialect::Postgres, Storage::Int64) => "bigint",
            (Dialect::Postgres, Storage::Decimal) => "numeric",
            (Dialect::Postgres, Storage::Double) => "double precision",
            (Dialect::Postgres, Storage::Bool) => "boolean",
            (Dialect::Postgres, Storage::DateTime) => "timestamptz",
            (Dialect::Postgres, Storage::Guid) => "uuid",
        }
    }
}

/// The storage class of an attribute's value column.
pub fn storage_of(ty: &AttributeType) -> Storage {
    match ty {
        AttributeType::String { .. } | AttributeType::Memo { .. } => Storage::Text,
        AttributeType::Integer { .. }
        | AttributeType::Picklist { .. }
        | AttributeType::State { .. }
        | AttributeType::Status { .. } => Storage::Int32,
        AttributeType::BigInt => Storage::Int64,
        AttributeType::Decimal { .. } | AttributeType::Money { .. } => Storage::Decimal,
        AttributeType::Double => Storage::Double,
        AttributeType::Boolean => Storage::Bool,
        AttributeType::DateTime => Storage::DateTime,
        AttributeType::Uniqueidentifier | AttributeType::Lookup { .. } => Storage::Guid,
    }
}

/// One storage column: its name and class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredColumn {
    pub name: String,
    pub storage: Storage,
}

/// The storage columns of an attribute: one, or two for a lookup (`x`, `x__type`).
pub fn stored_columns(attr: &AttributeMetadata) -> Vec<StoredColumn> {
    let name = attr.logical_name.to_string();
    let value = StoredColumn {
        name: name.clone(),
        storage: storage_of(&attr.attribute_type),
    };
    match attr.attribute_type {
        AttributeType::Lookup { .. } => {
            vec![
                value,
                StoredColumn {
                    name: format!("{name}__type"),
                    storage: Storage::EntityName,
                },
            ]
        }
        _ => vec![value],
    }
}

/// Where the value bound to a column comes from, per row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// The row's record id.
    Id,
    /// The row's newly allocated version.
    Version,
    /// The transaction's timestamp (createdon/modifiedon not supplied by the batch).
    Now,
    /// Value `index` of the batch row (the id part of a lookup).
    Value(usize),
    /// The entity name of the lookup value `index` of the batch row.
    LookupType(usize),
}

impl Slot {
    /// The batch value the slot reads, if any.
    pub fn value_index(&self) -> Option<usize> {
        match self {
            Slot::Value(i) | Slot::LookupType(i) => Some(*i),
            _ => None,
        }
    }
}

/// Attributes that are NOT NULL in every entity table and may be written.
const NOT_NULL: [&str; 4] = ["createdon", "modifiedon", "statecode", "statuscode"];

/// The columns of a row write, in bind order, with where each value comes from.
#[derive(Clone, Debug)]
pub struct WriteLayout {
    pub columns: Vec<(StoredColumn, Slot)>,
    /// Attribute types of the batch columns, for coercion and typed nulls.
    pub types: Vec<AttributeType>,
    /// Whether each batch column is NOT NULL in every entity table.
    pub required: Vec<bool>,
    /// Whether `createdon` comes from the batch (it is then also updated on conflict).
    pub explicit_createdon: bool,
}

impl WriteLayout {
    /// The layout for writing `columns` of `entity`. The primary id and `versionnumber` are
    /// managed by the store and cannot be written; `createdon`/`modifiedon` default to now.
    pub fn new(entity: &EntityMetadata, columns: &[AttributeName]) -> Result<Self, ModelError> {
        let id = entity.primary_id_attribute.to_string();
        let mut out = vec![
            (
                StoredColumn {
                    name: id,
                    storage: Storage::Guid,
                },
                Slot::Id,
            ),
            (
                StoredColumn {
                    name: "versionnumber".into(),
                    storage: Storage::Int64,
                },
                Slot::Version,
            ),
        ];
        let mut types = Vec::with_capacity(columns.len());
        for (i, name) in columns.iter().enumerate() {
            let attr = entity.require_attribute(name.as_str())?;
            if name == &entity.primary_id_attribute || name.as_str() == "versionnumber" {
                return Err(ModelError::InvalidValue {
                    attribute: name.clone(),
                    error: crmsync_model::ValueError::ReadOnly,
                });
            }
            if columns[..i].contains(name) {
                return Err(ModelError::InvalidMetadata {
                    entity: entity.logical_name.to_string(),
                    message: format!("attribute '{name}' is written twice"),
                });
            }
            types.push(attr.attribute_type.clone());
            for (part, col) in stored_columns(attr).into_iter().enumerate() {
                let slot = if part == 0 {
                    Slot::Value(i)
                } else {
                    Slot::LookupType(i)
                };
                out.push((col, slot));
            }
        }
        let has = |n: &str| columns.iter().any(|c| c.as_str() == n);
        let explicit_createdon = has("createdon");
        for stamp in ["createdon", "modifiedon"] {
            if !has(stamp) {
                out.push((
                    StoredColumn {
                        name: stamp.into(),
                        storage: Storage::DateTime,
                    },
                    Slot::Now,
                ));
            }
        }
        let required = columns.iter().map(|c| NOT_NULL.contains(&c.as_str())).collect();
        Ok(Self {
            columns: out,
            types,
            required,
            explicit_createdon,
        })
    }

    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The id columns of the lookups written, each with its batch column: each has an index
    /// of its own (`x__type` has none).
    pub fn lookup_ids(&self) -> Vec<(&StoredColumn, usize)> {
        self.columns
            .iter()
            .filter_map(|(c, slot)| match slot {
                Slot::Value(i) if matches!(self.types[*i], AttributeType::Lookup { .. }) => Some((c, *i)),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The columns a read returns, in select order, grouped by attribute.
#[derive(Clone, Debug)]
pub struct ReadLayout {
    /// Attribute, its type, and its first column's index in the select list.
    pub attributes: Vec<(AttributeName, AttributeType, usize)>,
    pub columns: Vec<StoredColumn>,
    /// Indexes into `attributes` in name order: the order a record keeps its values in.
    pub by_name: Vec<usize>,
}

impl ReadLayout {
    /// All attributes of the entity, or the listed ones (the primary id is always read
    /// first).
    pub fn new(entity: &EntityMetadata, columns: Option<&[AttributeName]>) -> Result<Self, ModelError> {
        let mut attrs: Vec<&AttributeMetadata> =
            vec![entity.require_attribute(entity.primary_id_attribute.as_str())?];
        match columns {
            None => attrs.extend(
                entity
                    .attributes
                    .iter()
                    .filter(|a| a.logical_name != entity.primary_id_attribute),
            ),
            Some(cols) => {
                for c in cols {
                    let a = entity.require_attribute(c.as_str())?;
                    if !attrs.iter().any(|x| x.logical_name == a.logical_name) {
                        attrs.push(a);
                    }
                }
            }
        }
        let mut layout = ReadLayout {
            attributes: Vec::new(),
            columns: Vec::new(),
            by_name: Vec::new(),
        };
        for a in attrs {
            layout.attributes.push((
                a.logical_name.clone(),
                a.attribute_type.clone(),
                layout.columns.len(),
            ));
            layout.columns.extend(stored_columns(a));
        }
        layout.by_name = (0..layout.attributes.len()).collect();
        layout
            .by_name
            .sort_unstable_by(|x, y| layout.attributes[*x].0.cmp(&layout.attributes[*y].0));
        Ok(layout)
    }

    /// The attributes in name order: the order of a decoded row's values.
    pub fn names(&self) -> impl Iterator<Item = &AttributeName> {
        self.by_name.iter().map(|i| &self.attributes[*i].0)
    }

    pub fn select_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| quote(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
