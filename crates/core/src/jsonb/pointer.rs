//! RFC 6901 JSON Pointer parsing.

use std::fmt;

/// Why a pointer string is not a JSON Pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PointerError {
    /// A non-empty pointer must start with `/`.
    NoLeadingSlash,
    /// `~` must be followed by `0` or `1`.
    BadEscape,
}

impl fmt::Display for PointerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointerError::NoLeadingSlash => {
                write!(f, "a JSON Pointer must be empty or start with \"/\"")
            }
            PointerError::BadEscape => write!(f, "\"~\" must be followed by \"0\" or \"1\""),
        }
    }
}

/// Splits a JSON Pointer into its unescaped reference tokens (`~1` is `/`, `~0` is `~`).
pub fn parse_pointer(pointer: &str) -> Result<Vec<String>, PointerError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let rest = pointer
        .strip_prefix('/')
        .ok_or(PointerError::NoLeadingSlash)?;
    rest.split('/').map(unescape).collect()
}

fn unescape(token: &str) -> Result<String, PointerError> {
    let mut out = String::with_capacity(token.len());
    let mut chars = token.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return Err(PointerError::BadEscape),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Escapes one reference token for use in a pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6901_examples() {
        assert_eq!(parse_pointer(""), Ok(vec![]));
        assert_eq!(parse_pointer("/foo/0"), Ok(vec!["foo".into(), "0".into()]));
        assert_eq!(parse_pointer("/"), Ok(vec!["".into()]));
        assert_eq!(parse_pointer("/a~1b"), Ok(vec!["a/b".into()]));
        assert_eq!(parse_pointer("/m~0n"), Ok(vec!["m~n".into()]));
        assert_eq!(parse_pointer("/~01"), Ok(vec!["~1".into()]));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_pointer("foo"), Err(PointerError::NoLeadingSlash));
        assert_eq!(parse_pointer("/a~2"), Err(PointerError::BadEscape));
        assert_eq!(parse_pointer("/a~"), Err(PointerError::BadEscape));
    }

    #[test]
    fn escape_round_trip() {
        let t = "a/~b";
        assert_eq!(
            parse_pointer(&format!("/{}", escape_token(t))),
            Ok(vec![t.to_string()])
        );
    }
}
