//! The master key: from `CRMSYNC_MASTER_KEY` (64 hex characters) or from `master.key` in the
//! data directory, created on first use with mode 0600. Everything secret the server keeps —
//! bearer token signatures now, encrypted connection credentials later — derives from it, so
//! instances that share a database must share this key.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, bail};
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const MASTER_KEY_ENV: &str = "CRMSYNC_MASTER_KEY";

pub struct MasterKey([u8; 32]);

fn parse_hex(s: &str) -> anyhow::Result<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("the master key must be 64 hexadecimal characters (32 bytes)");
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?;
    }
    Ok(out)
}

impl MasterKey {
    pub fn load(data_dir: &Path) -> anyhow::Result<MasterKey> {
        if let Ok(value) = std::env::var(MASTER_KEY_ENV) {
            return parse_hex(&value)
                .map(MasterKey)
                .with_context(|| format!("invalid {MASTER_KEY_ENV}"));
        }
        let path = data_dir.join("master.key");
        match std::fs::read_to_string(&path) {
            Ok(text) => parse_hex(&text)
                .map(MasterKey)
                .with_context(|| format!("invalid key file {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(data_dir)?;
                let key: [u8; 32] = rand::random();
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut file = options
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                file.write_all(hex.as_bytes())?;
                Ok(MasterKey(key))
            }
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// A key for one purpose, derived so that purposes never share key material.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::load(dir.path()).unwrap();
        let b = MasterKey::load(dir.path()).unwrap();
        assert_eq!(a.derive("x"), b.derive("x"));
        assert_ne!(a.derive("x"), a.derive("y"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(parse_hex("zz").is_err());
    }
}
