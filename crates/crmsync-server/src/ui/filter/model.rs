//! The Sync Filter editor's model: an entity's filter as the editor shows it, read from and
//! written to FetchXML, and read back from the editor's form.
//!
//! Shape: a root group of conditions and nested AND/OR groups, plus link-entity conditions
//! (records whose related record, through a lookup, matches a group of conditions; an inner
//! link, as Dataverse's editor makes). FetchXML outside that shape (columns, orders, outer or
//! nested links, `entityname` conditions) is not forced into the editor: [`from_fetchxml`]
//! says why, and the page offers the XML alone.
//!
//! Form encoding: every item has a path (`r` the root group, `r.0` its first item, `r.0.2`
//! the third item of that group; `l0` the first link, `l0.1` an item of its group) and its
//! fields are `{path}.kind` (`cond`, `group`, `link`), `{path}.type` (`and`/`or`),
//! `{path}.attr`, `{path}.op`, `{path}.v` (repeated for several values) and `{path}.vl`
//! (values one per line). Paths are renumbered on every render, so removing or adding items
//! needs no bookkeeping.

use std::collections::BTreeSet;

use crmsync_query::XmlElement;

/// Deepest nesting of groups the form is read to (a hostile form cannot recurse further).
const MAX_DEPTH: usize = 8;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Editor {
    pub root: Group,
    pub links: Vec<Link>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Group {
    pub or: bool,
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Cond(Cond),
    Group(Group),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cond {
    pub attribute: String,
    pub operator: String,
    pub values: Vec<String>,
}

/// Records whose related `entity` (reached through the lookup `lookup`) matches `group`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Link {
    pub lookup: String,
    pub entity: String,
    /// The related entity's primary id attribute.
    pub from: String,
    pub group: Group,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.items.iter().all(|i| match i {
            Item::Cond(_) => false,
            Item::Group(g) => g.is_empty(),
        })
    }

    /// The group at `path` below this one (`[]` is this group).
    pub fn group_mut(&mut self, path: &[usize]) -> Option<&mut Group> {
        match path.split_first() {
            None => Some(self),
            Some((i, rest)) => match self.items.get_mut(*i)? {
                Item::Group(g) => g.group_mut(rest),
                Item::Cond(_) => None,
            },
        }
    }

    /// Removes the item at `path` (non-empty).
    pub fn remove(&mut self, path: &[usize]) -> bool {
        let Some((last, parent)) = path.split_last() else {
            return false;
        };
        match self.group_mut(parent) {
            Some(g) if *last < g.items.len() => {
                g.items.remove(*last);
                true
            }
            _ => false,
        }
    }
}

// ---- FetchXML -> editor ----

fn unsupported(what: impl std::fmt::Display) -> String {
    format!("the editor cannot show {what}; edit the FetchXML instead")
}

/// The entity name and the editor of a sync filter, or why the editor cannot show it.
pub fn from_fetchxml(xml: &str) -> Result<(String, Editor), String> {
    let root = crmsync_query::parse_xml(xml).map_err(|e| format!("the FetchXML is not valid XML: {e}"))?;
    if root.name != "fetch" {
        return Err(format!("expected <fetch>, found <{}>", root.name));
    }
    let [entity] = root.children.as_slice() else {
        return Err("a sync filter's <fetch> holds exactly one <entity>".into());
    };
    if entity.name != "entity" {
        return Err(unsupported(format!("<{}> in <fetch>", entity.name)));
    }
    let name = entity
        .attr("name")
        .ok_or("the <entity> has no name attribute")?
        .to_owned();
    let mut editor = Editor::default();
    let mut filters = Vec::new();
    for child in &entity.children {
        match child.name.as_str() {
            "filter" => filters.push(group(child, 0)?),
            "link-entity" => editor.links.push(link(child)?),
            other => return Err(unsupported(format!("<{other}> elements"))),
        }
    }
    editor.root = merge(filters);
    Ok((name, editor))
}

/// Several sibling filters are ANDed, as in FetchXML.
fn merge(mut filters: Vec<Group>) -> Group {
    if filters.len() == 1 {
        return filters.remove(0);
    }
    Group {
        or: false,
        items: filters.into_iter().map(Item::Group).collect(),
    }
}

fn link(el: &XmlElement) -> Result<Link, String> {
    if !matches!(el.attr("link-type"), None | Some("inner")) {
        return Err(unsupported("outer links"));
    }
    let attr = |name: &str| {
        el.attr(name)
            .map(str::to_owned)
            .ok_or_else(|| format!("a <link-entity> has no {name} attribute"))
    };
    let mut filters = Vec::new();
    for child in &el.children {
        match child.name.as_str() {
            "filter" => filters.push(group(child, 0)?),
            "link-entity" => return Err(unsupported("links nested in links")),
            other => return Err(unsupported(format!("<{other}> in a <link-entity>"))),
        }
    }
    Ok(Link {
        entity: attr("name")?,
        from: attr("from")?,
        lookup: attr("to")?,
        group: merge(filters),
    })
}

fn group(el: &XmlElement, depth: usize) -> Result<Group, String> {
    if depth > MAX_DEPTH {
        return Err(unsupported(format!(
            "filters nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let or = match el.attr("type").unwrap_or("and") {
        "and" => false,
        "or" => true,
        other => return Err(format!("filter type '{other}' is neither and nor or")),
    };
    let mut items = Vec::new();
    for child in &el.children {
        match child.name.as_str() {
            "condition" => items.push(Item::Cond(cond(child)?)),
            "filter" => items.push(Item::Group(group(child, depth + 1)?)),
            other => return Err(unsupported(format!("<{other}> in a <filter>"))),
        }
    }
    Ok(Group { or, items })
}

fn cond(el: &XmlElement) -> Result<Cond, String> {
    if el.attr("entityname").is_some() || el.attr("alias").is_some() {
        return Err(unsupported("conditions on a linked entity's alias (entityname)"));
    }
    let mut values: Vec<String> = el.attr("value").map(str::to_owned).into_iter().collect();
    for v in &el.children {
        if v.name != "value" {
            return Err(unsupported(format!("<{}> in a <condition>", v.name)));
        }
        values.push(v.text.clone());
    }
    Ok(Cond {
        attribute: el.attr("attribute").unwrap_or_default().to_owned(),
        operator: el.attr("operator").unwrap_or_default().to_owned(),
        values,
    })
}

// ---- editor -> FetchXML ----

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn write_cond(c: &Cond, out: &mut String) {
    let head = format!(
        "<condition attribute=\"{}\" operator=\"{}\"",
        escape(&c.attribute),
        escape(&c.operator)
    );
    out.push_str(&head);
    match c.values.as_slice() {
        [] => out.push_str("/>"),
        [one] if !matches!(c.operator.as_str(), "in" | "not-in") => {
            out.push_str(&format!(" value=\"{}\"/>", escape(one)));
        }
        many => {
            out.push('>');
            for v in many {
                out.push_str(&format!("<value>{}</value>", escape(v)));
            }
            out.push_str("</condition>");
        }
    }
}

fn write_group(g: &Group, out: &mut String) {
    if g.is_empty() {
        return;
    }
    out.push_str(if g.or {
        "<filter type=\"or\">"
    } else {
        "<filter type=\"and\">"
    });
    for item in &g.items {
        match item {
            Item::Cond(c) => write_cond(c, out),
            Item::Group(inner) => write_group(inner, out),
        }
    }
    out.push_str("</filter>");
}

/// The single condition `c` of `entity` (inside `link` when given) as a FetchXML query, so
/// each row of the editor can be checked on its own.
pub fn single_condition(entity: &str, link: Option<&Link>, c: &Cond) -> String {
    let mut inner = String::from("<filter>");
    write_cond(c, &mut inner);
    inner.push_str("</filter>");
    if let Some(l) = link {
        inner = format!(
            "<link-entity name=\"{}\" from=\"{}\" to=\"{}\" link-type=\"inner\">{inner}</link-entity>",
            escape(&l.entity),
            escape(&l.from),
            escape(&l.lookup)
        );
    }
    format!(
        "<fetch><entity name=\"{}\">{inner}</entity></fetch>",
        escape(entity)
    )
}

impl Editor {
    pub fn is_empty(&self) -> bool {
        self.root.is_empty() && self.links.is_empty()
    }

    /// The FetchXML of this filter on `entity`; `None` when it filters nothing.
    pub fn to_fetchxml(&self, entity: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let mut out = format!("<fetch><entity name=\"{}\">", escape(entity));
        write_group(&self.root, &mut out);
        for l in &self.links {
            out.push_str(&format!(
                "<link-entity name=\"{}\" from=\"{}\" to=\"{}\" link-type=\"inner\">",
                escape(&l.entity),
                escape(&l.from),
                escape(&l.lookup)
            ));
            write_group(&l.group, &mut out);
            out.push_str("</link-entity>");
        }
        out.push_str("</entity></fetch>");
        Some(out)
    }
}

// ---- form -> editor ----

/// The editor's form fields, looked up by key.
pub struct FormFields<'a>(pub &'a [(String, String)]);

impl FormFields<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The indices `i` for which `{prefix}{i}.kind` is present, in order.
    fn indices(&self, prefix: &str) -> Vec<usize> {
        let set: BTreeSet<usize> = self
            .0
            .iter()
            .filter_map(|(k, _)| k.strip_prefix(prefix)?.strip_suffix(".kind")?.parse().ok())
            .collect();
        set.into_iter().collect()
    }

    fn group(&self, path: &str, depth: usize) -> Group {
        let mut g = Group {
            or: self.get(&format!("{path}.type")) == Some("or"),
            items: Vec::new(),
        };
        if depth > MAX_DEPTH {
            return g;
        }
        for i in self.indices(&format!("{path}.")) {
            let p = format!("{path}.{i}");
            match self.get(&format!("{p}.kind")) {
                Some("cond") => g.items.push(Item::Cond(self.cond(&p))),
                Some("group") => g.items.push(Item::Group(self.group(&p, depth + 1))),
                _ => {}
            }
        }
        g
    }

    fn cond(&self, p: &str) -> Cond {
        let mut values: Vec<String> = self.all(&format!("{p}.v")).map(str::to_owned).collect();
        for lines in self.all(&format!("{p}.vl")) {
            values.extend(
                lines
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
            );
        }
        Cond {
            attribute: self.get(&format!("{p}.attr")).unwrap_or_default().to_owned(),
            operator: self.get(&format!("{p}.op")).unwrap_or_default().to_owned(),
            values,
        }
    }

    /// The editor as the form describes it. A link's related entity comes from its
    /// `l{i}.link` choice, `lookup:entity`; `primary_id` names the related entity's id.
    pub fn editor(&self, primary_id: &dyn Fn(&str) -> Option<String>) -> Editor {
        let links = self
            .indices("l")
            .into_iter()
            .filter_map(|i| {
                let p = format!("l{i}");
                let (lookup, entity) = self.get(&format!("{p}.link"))?.split_once(':')?;
                Some(Link {
                    lookup: lookup.to_owned(),
                    entity: entity.to_owned(),
                    from: primary_id(entity)?,
                    group: self.group(&p, 1),
                })
            })
            .collect();
        Editor {
            root: self.group("r", 0),
            links,
        }
    }
}

/// A path of the form (`r.0.1`, `l2.0`) as the link index (for `l…`) and the item indices.
pub fn parse_path(path: &str) -> Option<(Option<usize>, Vec<usize>)> {
    let mut parts = path.split('.');
    let head = parts.next()?;
    let link = match head {
        "r" => None,
        l => Some(l.strip_prefix('l')?.parse().ok()?),
    };
    let rest = parts.map(|p| p.parse().ok()).collect::<Option<Vec<usize>>>()?;
    (rest.len() <= MAX_DEPTH + 1).then_some((link, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<fetch><entity name="contact"><filter type="and"><condition attribute="statecode" operator="eq" value="0"/><filter type="or"><condition attribute="lastname" operator="like" value="A%"/><condition attribute="industrycode" operator="in"><value>1</value><value>2</value></condition></filter></filter><link-entity name="account" from="accountid" to="parentcustomerid" link-type="inner"><filter type="and"><condition attribute="name" operator="begins-with" value="B &amp; C"/></filter></link-entity></entity></fetch>"#;

    #[test]
    fn fetchxml_round_trips_through_the_editor() {
        let (entity, editor) = from_fetchxml(XML).unwrap();
        assert_eq!(entity, "contact");
        assert_eq!(editor.root.items.len(), 2);
        assert_eq!(editor.links[0].lookup, "parentcustomerid");
        assert_eq!(editor.links[0].group.items.len(), 1);
        assert_eq!(editor.to_fetchxml("contact").as_deref(), Some(XML));
    }

    #[test]
    fn fetchxml_beyond_the_editor_is_refused_with_a_reason() {
        for (xml, reason) in [
            (
                r#"<fetch><entity name="a"><attribute name="x"/></entity></fetch>"#,
                "<attribute>",
            ),
            (
                r#"<fetch><entity name="a"><link-entity name="b" from="bid" to="b" link-type="outer"/></entity></fetch>"#,
                "outer",
            ),
            (
                r#"<fetch><entity name="a"><filter><condition entityname="l" attribute="x" operator="null"/></filter></entity></fetch>"#,
                "entityname",
            ),
            ("<fetch><entity name=\"a\">", "not valid XML"),
        ] {
            let err = from_fetchxml(xml).unwrap_err();
            assert!(err.contains(reason), "{xml}: {err}");
        }
    }

    #[test]
    fn an_empty_editor_filters_nothing_and_empty_groups_are_dropped() {
        let mut editor = Editor::default();
        assert_eq!(editor.to_fetchxml("account"), None);
        editor.root.items.push(Item::Group(Group::default()));
        assert_eq!(editor.to_fetchxml("account"), None);
        editor.root.items.push(Item::Cond(Cond {
            attribute: "name".into(),
            operator: "not-null".into(),
            values: vec![],
        }));
        assert_eq!(
            editor.to_fetchxml("account").unwrap(),
            r#"<fetch><entity name="account"><filter type="and"><condition attribute="name" operator="not-null"/></filter></entity></fetch>"#
        );
    }

    #[test]
    fn the_form_describes_the_same_editor() {
        let (_, editor) = from_fetchxml(XML).unwrap();
        let fields: Vec<(String, String)> = [
            ("r.type", "and"),
            ("r.0.kind", "cond"),
            ("r.0.attr", "statecode"),
            ("r.0.op", "eq"),
            ("r.0.v", "0"),
            ("r.1.kind", "group"),
            ("r.1.type", "or"),
            ("r.1.0.kind", "cond"),
            ("r.1.0.attr", "lastname"),
            ("r.1.0.op", "like"),
            ("r.1.0.v", "A%"),
            ("r.1.1.kind", "cond"),
            ("r.1.1.attr", "industrycode"),
            ("r.1.1.op", "in"),
            ("r.1.1.vl", "1\n 2 \n\n"),
            ("l0.kind", "link"),
            ("l0.link", "parentcustomerid:account"),
            ("l0.type", "and"),
            ("l0.0.kind", "cond"),
            ("l0.0.attr", "name"),
            ("l0.0.op", "begins-with"),
            ("l0.0.v", "B & C"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let id = |e: &str| Some(format!("{e}id"));
        assert_eq!(FormFields(&fields).editor(&id), editor);
    }

    #[test]
    fn paths_name_items_of_the_root_or_of_a_link() {
        assert_eq!(parse_path("r"), Some((None, vec![])));
        assert_eq!(parse_path("r.0.2"), Some((None, vec![0, 2])));
        assert_eq!(parse_path("l3.1"), Some((Some(3), vec![1])));
        assert_eq!(parse_path("x.1"), None);
        assert_eq!(parse_path("r.a"), None);
        let deep = format!("r{}", ".0".repeat(50));
        assert_eq!(parse_path(&deep), None);
    }
}
