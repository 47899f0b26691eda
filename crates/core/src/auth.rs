//! Basic authentication of the HTTP endpoint: the users file in the format of Prometheus'
//! exporter-toolkit web configuration (`basic_auth_users:` then one `name: bcrypt-hash` per
//! line), the `Authorization: Basic` header, and the check of a password against its hash.
//! Bounded before bcrypt sees anything: a file of at most 64 KiB and 1,000 users, hashes of a
//! cost from 4 to 12 (a cost of 31 would take hours per request), passwords of at most 72 bytes
//! (bcrypt reads no more; longer ones are refused, not cut).

use std::collections::HashMap;

/// Largest users file read.
pub const MAX_FILE: usize = 64 * 1024;
const MAX_USERS: usize = 1000;
const MAX_COST: u32 = 12;

/// The users of a file: name to bcrypt hash.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Users {
    hashes: HashMap<String, String>,
}

/// A YAML scalar as the file writes it: bare, or in single or double quotes (no escapes but
/// `''` in single quotes).
fn scalar(text: &str) -> Result<String, String> {
    let t = text.trim();
    let unquoted = if let Some(inner) = t.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(inner) = t.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        if inner.contains('\\') {
            return Err(format!("escapes in {t:?} are not supported"));
        }
        inner.to_owned()
    } else {
        t.to_owned()
    };
    Ok(unquoted)
}

/// A bcrypt hash the endpoint accepts: `$2a$`, `$2b$` or `$2y$`, a cost from 4 to 12, 60
/// characters.
fn valid_hash(hash: &str) -> Result<(), String> {
    let ok_prefix = ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p));
    let cost: Option<u32> = hash
        .get(4..6)
        .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|c| c.parse().ok());
    match cost {
        Some(c)
            if ok_prefix
                && hash.len() == 60
                && hash.as_bytes()[6] == b'$'
                && (4..=MAX_COST).contains(&c) =>
        {
            Ok(())
        }
        Some(c) if ok_prefix && c > MAX_COST => Err(format!(
            "a bcrypt cost of {c} is over {MAX_COST} (each failed login would cost seconds of CPU)"
        )),
        _ => Err("not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)".into()),
    }
}

impl Users {
    /// Reads the users file. Keys other than `basic_auth_users` (the toolkit's
    /// `tls_server_config`, `http_server_config`) are refused: TLS comes from the server's
    /// settings, and a key read as something it is not would be a surprise.
    pub fn parse(text: &str) -> Result<Users, String> {
        if text.len() > MAX_FILE {
            return Err(format!("the file is over {} KiB", MAX_FILE / 1024));
        }
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut hashes = HashMap::new();
        let (mut in_users, mut seen_users) = (false, false);
        for (n, raw) in text.lines().enumerate() {
            // a comment after a value (bcrypt hashes and names here hold no " #")
            let raw = raw.split_once(" #").map_or(raw, |(v, _)| v);
            let line = raw.trim_end();
            let content = line.trim_start();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let at = |why: String| format!("line {}: {why}", n + 1);
            if line.starts_with('\t') || line.trim_start_matches(' ').starts_with('\t') {
                return Err(at("indented with a tab (YAML takes spaces)".into()));
            }
            if !line.starts_with(' ') {
                match content.strip_suffix(':').map(str::trim_end) {
                    Some("basic_auth_users") if seen_users => {
                        return Err(at("basic_auth_users is given twice".into()))
                    }
                    Some("basic_auth_users") => (in_users, seen_users) = (true, true),
                    _ => {
                        return Err(at(format!(
                            "{content:?}: only basic_auth_users is read (TLS is set with pg_storage_ext.http_tls_cert_file and http_tls_key_file)"
                        )))
                    }
                }
                continue;
            }
            if !in_users {
                return Err(at("an indented line outside basic_auth_users".into()));
            }
            let Some((name, hash)) = content.split_once(':') else {
                return Err(at("not `name: bcrypt-hash`".into()));
            };
            let (name, hash) = (scalar(name).map_err(at)?, scalar(hash).map_err(at)?);
            if name.is_empty() || name.contains(':') {
                return Err(at(format!(
                    "user {name:?}: a name is not empty and has no colon"
                )));
            }
            valid_hash(&hash).map_err(|e| at(format!("user {name:?}: {e}")))?;
            if hashes.insert(name.clone(), hash).is_some() {
                return Err(at(format!("user {name:?} is given twice")));
            }
            if hashes.len() > MAX_USERS {
                return Err(format!("over {MAX_USERS} users"));
            }
        }
        if hashes.is_empty() {
            return Err("no user under basic_auth_users".into());
        }
        Ok(Users { hashes })
    }

    /// Whether the password is the user's. An unknown user costs the same bcrypt work as a
    /// known one (no telling users apart by time).
    pub fn verify(&self, user: &str, password: &str) -> bool {
        // a hash of cost 10 for no user; compared, never matched
        const NOBODY: &str = "$2b$10$iQhMs7woQxRuaZpQDjD4G.JEkSgCCBqP.lN81YK8JP2KZG3oHO1pe";
        // bcrypt reads 72 bytes and stops at a NUL: past 72, or with a NUL, a password would
        // pass in several spellings
        if password.len() > 72 || password.contains('\0') {
            return false;
        }
        let (hash, known) = match self.hashes.get(user) {
            Some(h) => (h.as_str(), true),
            None => (NOBODY, false),
        };
        bcrypt::verify(password, hash).unwrap_or(false) && known
    }
}

/// The user and password of an `Authorization: Basic …` header value; None for any other
/// scheme, or bad base64, or no colon.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || token.len() > 1024 {
        return None;
    }
    let bytes = crate::cert::base64(token.trim()).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // "s3cret" at cost 6 (made with crypt(3)'s bcrypt)
    const S3CRET: &str = "$2b$06$Os8Y7rl/knVFRty.1erBFOXjizCBZPOv1I9f9R9TGG868QhHCVv/a";

    #[test]
    fn files() {
        let u = Users::parse(&format!(
            "# users\nbasic_auth_users:\n  prometheus: {S3CRET}\n  'o''neil': \"{S3CRET}\"\n"
        ))
        .unwrap();
        assert!(u.verify("prometheus", "s3cret"));
        assert!(u.verify("o'neil", "s3cret"));
        assert!(!u.verify("prometheus", "wrong"));
        assert!(!u.verify("nobody", "s3cret"));
        // an unknown user costs real bcrypt work (a valid hash of cost 10), not an early return
        let t = std::time::Instant::now();
        assert!(!u.verify("nobody", "x"));
        assert!(t.elapsed() > std::time::Duration::from_millis(5));
        assert!(!u.verify("prometheus", &"x".repeat(100)));
        for bad in [
            "",
            "basic_auth_users:\n",
            "tls_server_config:\n  cert_file: x\n",
            "basic_auth_users:\n  a: notahash\n",
            "basic_auth_users:\n  a: $2b$31$Os8Y7rl/knVFRty.1erBFOXjizCBZPOv1I9f9R9TGG868QhHCVv/a\n",
            "  a: b\n",
            "basic_auth_users:\n  a\n",
            "basic_auth_users:\n  a: \"$2b\\n\"\n",
        ] {
            assert!(Users::parse(bad).is_err(), "{bad:?}");
        }
        let twice = format!("basic_auth_users:\n  a: {S3CRET}\n  a: {S3CRET}\n");
        assert!(Users::parse(&twice).is_err());
        let twice = format!("basic_auth_users:\n  a: {S3CRET}\nbasic_auth_users:\n  b: {S3CRET}\n");
        assert!(Users::parse(&twice).is_err());
        assert!(Users::parse(&format!("basic_auth_users:\n\ta: {S3CRET}\n")).is_err());
        assert!(Users::parse(&format!(
            "basic_auth_users:\n  a: {}\n",
            S3CRET.replace("$06$", "$+6$")
        ))
        .is_err());
        let commented = Users::parse(&format!(
            "\u{feff}basic_auth_users: # users\n  a: {S3CRET} # the scraper\n"
        ))
        .unwrap();
        assert!(commented.verify("a", "s3cret"));
        assert!(!commented.verify("a", "s3cret\0s3cret"));
        assert!(Users::parse(&"#".repeat(MAX_FILE + 1)).is_err());
    }

    #[test]
    fn headers() {
        // "prometheus:s3cret"
        assert_eq!(
            basic_credentials("Basic cHJvbWV0aGV1czpzM2NyZXQ="),
            Some(("prometheus".into(), "s3cret".into()))
        );
        assert_eq!(
            basic_credentials("basic cHJvbWV0aGV1czpzM2NyZXQ="),
            Some(("prometheus".into(), "s3cret".into()))
        );
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        // "nocolon"
        assert_eq!(basic_credentials("Basic bm9jb2xvbg=="), None);
        assert_eq!(
            basic_credentials(&format!("Basic {}", "A".repeat(2000))),
            None
        );
    }
}
