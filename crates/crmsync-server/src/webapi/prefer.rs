//! The `Prefer` header: a comma-separated list of preferences in any order
//! (`odata.track-changes,odata.maxpagesize=5000`), as Dataverse reads it.

use axum::http::HeaderMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prefer {
    pub max_page_size: Option<usize>,
    pub track_changes: bool,
    pub return_representation: bool,
    /// The `odata.include-annotations` pattern list (`*`, `Namespace.*`, or names).
    pub include_annotations: Option<Vec<String>>,
}

impl Prefer {
    pub fn parse(headers: &HeaderMap) -> Prefer {
        let mut prefer = Prefer::default();
        for value in headers.get_all("prefer").iter().filter_map(|v| v.to_str().ok()) {
            for item in split_top_level(value) {
                let (name, arg) = match item.split_once('=') {
                    Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                    None => (item.trim(), None),
                };
                match (name.to_ascii_lowercase().as_str(), arg) {
                    ("odata.maxpagesize", Some(a)) => {
                        prefer.max_page_size = a.parse().ok().filter(|n| *n > 0)
                    }
                    ("odata.track-changes", _) => prefer.track_changes = true,
                    ("return", Some("representation")) => prefer.return_representation = true,
                    ("odata.include-annotations", Some(a)) => {
                        prefer.include_annotations = Some(a.split(',').map(|s| s.trim().to_owned()).collect())
                    }
                    _ => {}
                }
            }
        }
        prefer
    }

    /// Whether an annotation term such as `Microsoft.Dynamics.CRM.lookuplogicalname` is wanted.
    pub fn wants_annotation(&self, term: &str) -> bool {
        self.include_annotations.as_ref().is_some_and(|patterns| {
            patterns.iter().any(|p| {
                p == "*"
                    || p.eq_ignore_ascii_case(term)
                    || p.strip_suffix('*').is_some_and(|prefix| term.starts_with(prefix))
            })
        })
    }

    /// The `Preference-Applied` value for what was honoured.
    pub fn applied(&self, page_size: Option<usize>, track_changes: bool) -> Option<String> {
        let mut parts = Vec::new();
        if let Some(n) = page_size.filter(|_| self.max_page_size.is_some()) {
            parts.push(format!("odata.maxpagesize={n}"));
        }
        if track_changes {
            parts.push("odata.track-changes".to_owned());
        }
        if let Some(a) = &self.include_annotations {
            parts.push(format!("odata.include-annotations=\"{}\"", a.join(",")));
        }
        if self.return_representation {
            parts.push("return=representation".to_owned());
        }
        (!parts.is_empty()).then(|| parts.join(","))
    }
}

/// Splits on commas outside double quotes (annotation lists are quoted and contain commas).
fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut start, mut quoted) = (Vec::new(), 0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Prefer {
        let mut h = HeaderMap::new();
        h.insert("prefer", v.parse().unwrap());
        Prefer::parse(&h)
    }

    #[test]
    fn preferences_are_read_in_any_order() {
        for v in [
            "odata.track-changes,odata.maxpagesize=5000",
            "odata.maxpagesize=5000, odata.track-changes",
        ] {
            let p = parse(v);
            assert!(p.track_changes);
            assert_eq!(p.max_page_size, Some(5000));
        }
        let p = parse(
            r#"odata.include-annotations="OData.Community.Display.V1.FormattedValue,Microsoft.Dynamics.CRM.*",return=representation"#,
        );
        assert!(p.return_representation);
        assert!(p.wants_annotation("Microsoft.Dynamics.CRM.lookuplogicalname"));
        assert!(p.wants_annotation("OData.Community.Display.V1.FormattedValue"));
        assert!(!parse("odata.maxpagesize=10").wants_annotation("x"));
        assert!(parse(r#"odata.include-annotations="*""#).wants_annotation("anything"));
        assert_eq!(parse("odata.maxpagesize=abc").max_page_size, None);
    }
}
