//! PostgreSQL identifier arithmetic: names that fit NAMEDATALEN without colliding.

/// Longest identifier PostgreSQL keeps (NAMEDATALEN - 1 bytes).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// FNV-1a, 32 bits: a stable hash, the same on every machine and release.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// Largest prefix of `s` no longer than `max` bytes that ends on a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `base` followed by `suffix`, within 63 bytes. When too long, `base` is cut on a character
/// boundary and followed by `_` and eight hex digits of a hash of the whole `base`, so two long
/// bases that share a prefix still get different names, and the same base always the same name.
pub fn fit_identifier(base: &str, suffix: &str) -> String {
    if base.len() + suffix.len() <= MAX_IDENTIFIER_BYTES {
        return format!("{base}{suffix}");
    }
    let tag = format!("_{:08x}", fnv1a32(base.as_bytes()));
    let room = MAX_IDENTIFIER_BYTES.saturating_sub(tag.len() + suffix.len());
    format!("{}{tag}{suffix}", truncate_bytes(base, room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept() {
        assert_eq!(
            fit_identifier("articles", "_p20260101"),
            "articles_p20260101"
        );
    }

    #[test]
    fn long_names_fit_and_differ() {
        let a = format!("{}a", "x".repeat(70));
        let b = format!("{}b", "x".repeat(70));
        let na = fit_identifier(&a, "_default");
        let nb = fit_identifier(&b, "_default");
        assert!(na.len() <= MAX_IDENTIFIER_BYTES && nb.len() <= MAX_IDENTIFIER_BYTES);
        assert_ne!(na, nb);
        assert!(na.ends_with("_default"));
        assert_eq!(na, fit_identifier(&a, "_default"));
    }

    #[test]
    fn cuts_on_character_boundaries() {
        let base = "é".repeat(40); // 80 bytes
        let n = fit_identifier(&base, "_p1");
        assert!(n.len() <= MAX_IDENTIFIER_BYTES);
        assert!(n.starts_with("éé"));
        assert_eq!(truncate_bytes("aé", 2), "a");
    }
}
