//! The body of `ConnectAsync`: the XML of SPEC §5.3 (`<ConnectRequest><SyncSetup>…`) or the
//! same fields as JSON (`{"SyncSetup":{…}}` or the fields alone). XML is read with the
//! defensive reader of the query crate: no DOCTYPE, bounded size and depth.

use serde_json::Value;

use crate::ApiError;

/// What the caller asked for, before any check against the server.
#[derive(Clone, Default, PartialEq)]
pub struct ConnectInput {
    pub provider: String,
    pub url: String,
    pub user: String,
    pub password: String,
    pub registration_email: Option<String>,
    pub registration_password: Option<String>,
    pub entities: Vec<String>,
    pub filters_xml: Option<String>,
    pub write_offline: bool,
}

impl std::fmt::Debug for ConnectInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectInput")
            .field("provider", &self.provider)
            .field("url", &self.url)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

const UNSUPPORTED: [&str; 4] = ["TenantId", "ClientId", "ClientSecret", "TokenUrl"];

fn set(input: &mut ConnectInput, name: &str, value: String) -> Result<(), ApiError> {
    match name {
        "ProviderID" => input.provider = value,
        "Url" => input.url = value,
        "UserName" => input.user = value,
        "Password" => input.password = value,
        "Entities" => {
            input.entities = value
                .split(',')
                .map(|e| e.trim().to_owned())
                .filter(|e| !e.is_empty())
                .collect()
        }
        "SyncFiltersXml" => input.filters_xml = Some(value).filter(|v| !v.trim().is_empty()),
        "WriteOffline" => {
            input.write_offline = match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" | "" => false,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "WriteOffline must be true or false, not '{other}'"
                    )));
                }
            }
        }
        n if UNSUPPORTED.contains(&n) => {
            return Err(ApiError::bad_request(format!(
                "{n}: client-credential sign-in to the server is not supported yet; use UserName and Password"
            )));
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown element '{other}' in SyncSetup"
            )));
        }
    }
    Ok(())
}

fn registration(input: &mut ConnectInput, name: &str, value: String) -> Result<(), ApiError> {
    match name {
        "Email" => input.registration_email = Some(value).filter(|v| !v.trim().is_empty()),
        "Password" => input.registration_password = Some(value).filter(|v| !v.is_empty()),
        "FirstName" | "LastName" | "Company" => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown element '{other}' in RegistrationInfo"
            )));
        }
    }
    Ok(())
}

pub fn from_xml(body: &str) -> Result<ConnectInput, ApiError> {
    let root = crmsync_query::parse_xml(body)
        .map_err(|e| ApiError::bad_request(format!("the ConnectRequest is not valid XML: {e}")))?;
    let setup = if root.name == "SyncSetup" {
        &root
    } else if root.name == "ConnectRequest" {
        root.children
            .iter()
            .find(|c| c.name == "SyncSetup")
            .ok_or_else(|| ApiError::bad_request("ConnectRequest needs a SyncSetup element"))?
    } else {
        return Err(ApiError::bad_request(format!(
            "expected <ConnectRequest>, got <{}>",
            root.name
        )));
    };
    let mut input = ConnectInput::default();
    for child in &setup.children {
        if child.name == "RegistrationInfo" {
            for r in &child.children {
                registration(&mut input, &r.name, r.text.trim().to_owned())?;
            }
        } else {
            let text = if child.name == "Password" {
                child.text.clone()
            } else {
                child.text.trim().to_owned()
            };
            set(&mut input, &child.name, text)?;
        }
    }
    Ok(input)
}

fn text(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Array(items) => Ok(items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(",")),
        Value::Null => Ok(String::new()),
        other => Err(ApiError::bad_request(format!("unexpected value {other}"))),
    }
}

pub fn from_json(body: &[u8]) -> Result<ConnectInput, ApiError> {
    let json: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let setup = json.get("SyncSetup").unwrap_or(&json);
    let fields = setup
        .as_object()
        .ok_or_else(|| ApiError::bad_request("the body must be a JSON object"))?;
    let mut input = ConnectInput::default();
    for (name, value) in fields {
        if name == "RegistrationInfo" {
            let reg = value
                .as_object()
                .ok_or_else(|| ApiError::bad_request("RegistrationInfo must be an object"))?;
            for (r, v) in reg {
                registration(&mut input, r, text(v)?)?;
            }
        } else {
            set(&mut input, name, text(value)?)?;
        }
    }
    Ok(input)
}

/// Reads the body as XML when it looks like XML, as JSON otherwise.
pub fn parse(body: &[u8]) -> Result<ConnectInput, ApiError> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let input = if text.trim_start().starts_with('<') {
        from_xml(text)?
    } else {
        from_json(body)?
    };
    for (field, value) in [
        ("ProviderID", &input.provider),
        ("Url", &input.url),
        ("UserName", &input.user),
        ("Password", &input.password),
    ] {
        if value.trim().is_empty() {
            return Err(ApiError::bad_request(format!("{field} is required")));
        }
    }
    Ok(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<ConnectRequest>
      <SyncSetup>
        <ProviderID>60650fb3-5d8b-45dd-b82e-459f3b019e9a</ProviderID>
        <Url>https://server.example/contoso</Url>
        <UserName>admin@contoso.example</UserName>
        <Password> secret with spaces </Password>
        <RegistrationInfo><Email>me@client.example</Email><FirstName>A</FirstName><LastName>B</LastName><Company>C</Company><Password>client-pass</Password></RegistrationInfo>
        <Entities>account, contact</Entities>
        <SyncFiltersXml><![CDATA[<SyncFilters><fetch><entity name="account"/></fetch></SyncFilters>]]></SyncFiltersXml>
        <WriteOffline>true</WriteOffline>
      </SyncSetup>
    </ConnectRequest>"#;

    #[test]
    fn the_documented_xml_is_read() {
        let input = parse(XML.as_bytes()).unwrap();
        assert_eq!(input.provider, "60650fb3-5d8b-45dd-b82e-459f3b019e9a");
        assert_eq!(input.password, " secret with spaces ");
        assert_eq!(input.entities, ["account", "contact"]);
        assert_eq!(input.registration_email.as_deref(), Some("me@client.example"));
        assert!(input.filters_xml.unwrap().starts_with("<SyncFilters>"));
        assert!(input.write_offline);
    }

    #[test]
    fn the_same_fields_are_read_from_json() {
        let json = br#"{"SyncSetup":{"ProviderID":"crmsync","Url":"http://h/o","UserName":"u","Password":"p","Entities":["account"],"WriteOffline":false}}"#;
        let input = parse(json).unwrap();
        assert_eq!(
            (input.provider.as_str(), input.entities.len(), input.write_offline),
            ("crmsync", 1, false)
        );
    }

    #[test]
    fn bad_bodies_are_clear_errors() {
        let cases: [(&str, &str); 6] = [
            ("<!DOCTYPE x [<!ENTITY a 'b'>]><ConnectRequest/>", "DOCTYPE"),
            (
                "<ConnectRequest><SyncSetup><Ur>x</Ur></SyncSetup></ConnectRequest>",
                "unknown element 'Ur'",
            ),
            ("<ConnectRequest/>", "SyncSetup"),
            (
                "<ConnectRequest><SyncSetup><Url>u</Url></SyncSetup></ConnectRequest>",
                "ProviderID is required",
            ),
            ("{\"Url\": 5}", "unexpected value"),
            (
                "<ConnectRequest><SyncSetup><ClientId>x</ClientId></SyncSetup></ConnectRequest>",
                "not supported yet",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body.as_bytes()).unwrap_err();
            assert!(
                err.message.contains(expected)
                    || err.message.to_lowercase().contains(&expected.to_lowercase()),
                "{body}: {}",
                err.message
            );
        }
    }
}
