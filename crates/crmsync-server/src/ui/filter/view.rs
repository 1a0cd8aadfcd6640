//! The editor as rows for the template: the tree flattened into group and link openings,
//! conditions and closings (templates do not recurse), each condition with the attribute,
//! operator and value choices its entity's metadata allows, and the message of its own check.

use crmsync_model::{AttributeMetadata, AttributeType, EntityMetadata};
use crmsync_query::{OperandCount, fetchxml_operators};

use super::model::{Cond, Editor, Group, Item, Link};

pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Default)]
pub struct Row {
    /// `group-start`, `group-end`, `cond`, `link-start`, `link-end`.
    pub kind: &'static str,
    pub path: String,
    /// `path` usable in an element id.
    pub id: String,
    pub depth: usize,
    pub or: bool,
    /// Whether the group can be removed (not the root group nor a link's own group).
    pub removable: bool,
    /// Whether this group is a link's group (its `kind` field is the link's).
    pub in_link: bool,
    pub attributes: Vec<Choice>,
    pub operators: Vec<Choice>,
    /// `none`, `text`, `number`, `date`, `select`, `multi`, `two`, `lines`.
    pub widget: &'static str,
    pub options: Vec<Choice>,
    pub value1: String,
    pub value2: String,
    pub lines: String,
    pub links: Vec<Choice>,
    pub error: Option<String>,
}

/// Readable names of the FetchXML operators.
pub fn operator_label(op: &str) -> &'static str {
    match op {
        "eq" => "Equals",
        "ne" => "Does not equal",
        "gt" => "Is greater than",
        "ge" => "Is greater than or equal to",
        "lt" => "Is less than",
        "le" => "Is less than or equal to",
        "like" => "Is like (% and _ wildcards)",
        "not-like" => "Is not like",
        "begins-with" => "Begins with",
        "not-begin-with" => "Does not begin with",
        "ends-with" => "Ends with",
        "not-end-with" => "Does not end with",
        "in" => "Is one of",
        "not-in" => "Is none of",
        "between" => "Is between",
        "not-between" => "Is not between",
        "null" => "Does not contain data",
        "not-null" => "Contains data",
        "on" => "On",
        "on-or-before" => "On or before",
        "on-or-after" => "On or after",
        "today" => "Today",
        "yesterday" => "Yesterday",
        "tomorrow" => "Tomorrow",
        "last-x-days" => "Last X days",
        "next-x-days" => "Next X days",
        "last-x-hours" => "Last X hours",
        "next-x-hours" => "Next X hours",
        "olderthan-x-minutes" => "Older than X minutes",
        "olderthan-x-hours" => "Older than X hours",
        "olderthan-x-days" => "Older than X days",
        "eq-userid" => "Equals current user",
        "ne-userid" => "Does not equal current user",
        _ => "Unknown operator",
    }
}

pub fn attribute_label(a: &AttributeMetadata) -> String {
    if a.display_name.trim().is_empty() {
        a.logical_name.to_string()
    } else {
        format!("{} ({})", a.display_name, a.logical_name)
    }
}

/// The attributes of `entity` a condition may test, by label.
fn sorted_attributes(entity: &EntityMetadata) -> Vec<&AttributeMetadata> {
    let mut attrs: Vec<&AttributeMetadata> = entity.attributes.iter().collect();
    attrs.sort_by_key(|a| attribute_label(a).to_lowercase());
    attrs
}

/// The operator a condition keeps: its own when the attribute accepts it, else `eq`.
pub fn fitting_operator(attribute: Option<&AttributeMetadata>, operator: &str) -> String {
    match attribute {
        Some(a)
            if !fetchxml_operators(&a.attribute_type)
                .iter()
                .any(|(n, _)| *n == operator) =>
        {
            "eq".into()
        }
        _ => operator.to_owned(),
    }
}

fn option_choices(a: &AttributeMetadata, selected: &[String]) -> Option<Vec<Choice>> {
    let choice = |value: String, label: String| Choice {
        selected: selected.contains(&value),
        value,
        label,
    };
    match &a.attribute_type {
        AttributeType::Boolean => Some(vec![
            choice("1".into(), "Yes".into()),
            choice("0".into(), "No".into()),
        ]),
        t => t.option_set().map(|set| {
            set.options
                .iter()
                .map(|o| choice(o.value.to_string(), format!("{} ({})", o.label, o.value)))
                .collect()
        }),
    }
}

fn cond_row(c: &Cond, path: &str, depth: usize, entity: &EntityMetadata, error: Option<String>) -> Row {
    let attribute = entity.attribute(&c.attribute);
    let mut attributes: Vec<Choice> = sorted_attributes(entity)
        .into_iter()
        .map(|a| Choice {
            value: a.logical_name.to_string(),
            label: attribute_label(a),
            selected: a.logical_name.as_str() == c.attribute,
        })
        .collect();
    if attribute.is_none() {
        attributes.insert(
            0,
            Choice {
                value: c.attribute.clone(),
                label: format!("{} (not in this entity)", c.attribute),
                selected: true,
            },
        );
    }
    let operator = fitting_operator(attribute, &c.operator);
    let allowed = attribute
        .map(|a| fetchxml_operators(&a.attribute_type))
        .unwrap_or_default();
    let mut operators: Vec<Choice> = allowed
        .iter()
        .map(|(name, _)| Choice {
            value: (*name).to_owned(),
            label: operator_label(name).to_owned(),
            selected: *name == operator,
        })
        .collect();
    if !allowed.iter().any(|(n, _)| *n == operator) {
        operators.insert(
            0,
            Choice {
                value: operator.clone(),
                label: operator.clone(),
                selected: true,
            },
        );
    }
    let count = allowed
        .iter()
        .find(|(n, _)| *n == operator)
        .map(|(_, c)| *c)
        .unwrap_or(OperandCount::One);
    let options = attribute.and_then(|a| option_choices(a, &c.values));
    let is_date = attribute.is_some_and(|a| a.attribute_type == AttributeType::DateTime);
    let widget = match count {
        OperandCount::None => "none",
        OperandCount::Two => "two",
        OperandCount::Many if options.is_some() => "multi",
        OperandCount::Many => "lines",
        OperandCount::One if options.is_some() => "select",
        OperandCount::One if operator.contains("-x-") => "number",
        OperandCount::One if is_date && operator.starts_with("on") => "date",
        OperandCount::One => "text",
    };
    Row {
        kind: "cond",
        id: path.replace('.', "-"),
        path: path.to_owned(),
        depth,
        attributes,
        operators,
        widget,
        options: options.unwrap_or_default(),
        value1: c.values.first().cloned().unwrap_or_default(),
        value2: c.values.get(1).cloned().unwrap_or_default(),
        lines: c.values.join("\n"),
        error,
        ..Row::default()
    }
}

/// Checks each condition on its own; returns the message for a condition's path.
pub type CondCheck<'a> = dyn Fn(Option<&Link>, &Cond) -> Option<String> + 'a;

struct Flatten<'a> {
    rows: Vec<Row>,
    check: &'a CondCheck<'a>,
}

impl Flatten<'_> {
    fn group(&mut self, g: &Group, path: &str, depth: usize, entity: &EntityMetadata, link: Option<&Link>) {
        let removable = depth > 0 && link.is_none_or(|_| path.contains('.'));
        let in_link = link.is_some() && !path.contains('.');
        let edge = |kind| Row {
            kind,
            id: path.replace('.', "-"),
            path: path.to_owned(),
            depth,
            or: g.or,
            removable,
            in_link,
            ..Row::default()
        };
        self.rows.push(edge("group-start"));
        for (i, item) in g.items.iter().enumerate() {
            let p = format!("{path}.{i}");
            match item {
                Item::Cond(c) => {
                    let error = (self.check)(link, c);
                    self.rows.push(cond_row(c, &p, depth + 1, entity, error));
                }
                Item::Group(inner) => self.group(inner, &p, depth + 1, entity, link),
            }
        }
        self.rows.push(edge("group-end"));
    }
}

/// The (lookup, related entity) pairs a link may follow from `entity`.
pub fn link_choices<'m>(
    entity: &'m EntityMetadata,
    all: &'m [EntityMetadata],
) -> Vec<(&'m AttributeMetadata, &'m EntityMetadata)> {
    let mut out = Vec::new();
    for a in sorted_attributes(entity) {
        if let AttributeType::Lookup { targets } = &a.attribute_type {
            for t in targets {
                if let Some(target) = all.iter().find(|e| &e.logical_name == t) {
                    out.push((a, target));
                }
            }
        }
    }
    out
}

/// The rows of `editor` on `entity`; `link_error` checks a link itself.
pub fn rows(
    editor: &Editor,
    entity: &EntityMetadata,
    all: &[EntityMetadata],
    check: &CondCheck<'_>,
    link_error: &dyn Fn(&Link) -> Option<String>,
) -> Vec<Row> {
    let mut flat = Flatten {
        rows: Vec::new(),
        check,
    };
    flat.group(&editor.root, "r", 0, entity, None);
    let choices = link_choices(entity, all);
    for (i, link) in editor.links.iter().enumerate() {
        let path = format!("l{i}");
        let current = format!("{}:{}", link.lookup, link.entity);
        let mut links: Vec<Choice> = choices
            .iter()
            .map(|(a, t)| {
                let value = format!("{}:{}", a.logical_name, t.logical_name);
                Choice {
                    selected: value == current,
                    label: format!("{} → {}", attribute_label(a), super::super::entities::label(t)),
                    value,
                }
            })
            .collect();
        if !links.iter().any(|c| c.selected) {
            links.insert(
                0,
                Choice {
                    value: current.clone(),
                    label: format!("{} → {} (not available)", link.lookup, link.entity),
                    selected: true,
                },
            );
        }
        flat.rows.push(Row {
            kind: "link-start",
            id: path.clone(),
            path: path.clone(),
            depth: 0,
            links,
            error: link_error(link),
            ..Row::default()
        });
        match all.iter().find(|e| e.logical_name.as_str() == link.entity) {
            Some(target) => flat.group(&link.group, &path, 1, target, Some(link)),
            None => flat.group(&link.group, &path, 1, entity, Some(link)),
        }
        flat.rows.push(Row {
            kind: "link-end",
            id: path.clone(),
            path,
            ..Row::default()
        });
    }
    flat.rows
}
