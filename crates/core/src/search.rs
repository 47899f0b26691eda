//! Full-text search: parsing of the weighted source arguments of `storage.tsvector_update` and
//! of the weights object of `storage.enable_search`.

use std::fmt;

/// A tsvector weight label. `D` is the default (and what `to_tsvector` produces).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Weight {
    A,
    B,
    C,
    D,
}

impl Weight {
    /// One letter, A to D, either case.
    pub fn parse(s: &str) -> Option<Weight> {
        match s {
            "A" | "a" => Some(Weight::A),
            "B" | "b" => Some(Weight::B),
            "C" | "c" => Some(Weight::C),
            "D" | "d" => Some(Weight::D),
            _ => None,
        }
    }

    /// The letter `setweight` takes.
    pub fn letter(self) -> char {
        match self {
            Weight::A => 'A',
            Weight::B => 'B',
            Weight::C => 'C',
            Weight::D => 'D',
        }
    }
}

/// Why a source argument could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum SourceError {
    /// Nothing before the colon, or an empty argument.
    EmptyName,
    /// The text after the last colon is not one of A, B, C, D.
    BadWeight(String),
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceError::EmptyName => write!(f, "the column name is empty"),
            SourceError::BadWeight(w) => write!(f, "weight \"{w}\" is not one of A, B, C, D"),
        }
    }
}

/// Splits `column:W` into the column and its weight; without a colon the weight is D. The last
/// colon counts, so callers that know the table should first check whether the whole argument is a
/// column name (a column may contain a colon).
pub fn split_source(arg: &str) -> Result<(&str, Weight), SourceError> {
    let (name, weight) = match arg.rsplit_once(':') {
        Some((name, w)) => (
            name,
            Weight::parse(w).ok_or_else(|| SourceError::BadWeight(w.to_owned()))?,
        ),
        None => (arg, Weight::D),
    };
    if name.is_empty() {
        return Err(SourceError::EmptyName);
    }
    Ok((name, weight))
}

/// Orders `(column, weight)` pairs for the trigger: by weight, A first, keeping the given order
/// among equal weights. A jsonb object has no order of its own (keys are sorted by length), so
/// `{"title":"A","summary":"B","content":"C"}` gives title, summary, content — the usual
/// `setweight(title,'A') || setweight(summary,'B') || setweight(content,'C')`.
pub fn order_sources(mut pairs: Vec<(String, Weight)>) -> Vec<(String, Weight)> {
    pairs.sort_by_key(|(_, w)| *w);
    pairs
}

/// The trigger argument for one source: `column:W`.
pub fn source_arg(column: &str, weight: Weight) -> String {
    format!("{column}:{}", weight.letter())
}

/// What a search box holds while its user types, split for the query side: the words before the
/// one being typed, and that word when it should match as a prefix.
#[derive(Debug, PartialEq, Eq)]
pub struct Typing<'a> {
    /// Everything before the word being typed (websearch syntax), without a trailing `or`.
    pub rest: &'a str,
    /// The word being typed: letters and digits only, the box's last characters.
    pub word: Option<&'a str>,
    /// Whether `rest` ended with the operator `or` (the word is an alternative, not one more
    /// required word).
    pub or: bool,
}

/// Splits `query` into the words before the last one and the last word, which is matched as a
/// prefix only when the user may still be typing it: the box ends in it (no space after), it is
/// letters and digits only (not `e-mail`, `c++` or a URL, which the parser reads as one token),
/// it is neither negated (`-word`) nor inside an open quote, and it is not the operator `or`.
pub fn split_typing(query: &str) -> Typing<'_> {
    let whole = Typing {
        rest: query,
        word: None,
        or: false,
    };
    let start = query
        .char_indices()
        .rev()
        .take_while(|(_, c)| !c.is_whitespace())
        .last()
        .map(|(i, _)| i);
    let Some(start) = start else {
        return whole;
    };
    let word = &query[start..];
    let open_quote = query.matches('"').count() % 2 == 1;
    if open_quote || !word.chars().all(char::is_alphanumeric) || word.eq_ignore_ascii_case("or") {
        return whole;
    }
    let before = query[..start].trim_end();
    let last_before = before
        .rsplit(char::is_whitespace)
        .next()
        .unwrap_or_default();
    match last_before.eq_ignore_ascii_case("or") {
        true => Typing {
            rest: before[..before.len() - last_before.len()].trim_end(),
            word: Some(word),
            or: true,
        },
        false => Typing {
            rest: before,
            word: Some(word),
            or: false,
        },
    }
}

/// A lexeme (`word:*` for a prefix) as tsquery input: quoted, its quotes doubled and its
/// backslashes escaped, so that the tsquery holds exactly that lexeme.
pub fn lexeme_query(word: &str) -> String {
    let (lexeme, prefix) = match word.strip_suffix(":*") {
        Some(l) => (l, ":*"),
        None => (word, ""),
    };
    format!(
        "'{}'{prefix}",
        lexeme.replace('\\', "\\\\").replace('\'', "''")
    )
}

/// A 64-bit key of a table's lexeme (FNV-1a over the table's OID and the lexeme's bytes): what
/// the search trigger remembers of the words it queued.
pub fn word_key(table: u32, lexeme: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    table
        .to_le_bytes()
        .iter()
        .chain(lexeme)
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(PRIME)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_weights() {
        assert_eq!(split_source("title:A"), Ok(("title", Weight::A)));
        assert_eq!(split_source("body:c"), Ok(("body", Weight::C)));
        assert_eq!(split_source("body"), Ok(("body", Weight::D)));
        assert_eq!(split_source("a:b:B"), Ok(("a:b", Weight::B)));
        assert_eq!(
            split_source("body:E"),
            Err(SourceError::BadWeight("E".into()))
        );
        assert_eq!(
            split_source("body:"),
            Err(SourceError::BadWeight(String::new()))
        );
        assert_eq!(split_source(":A"), Err(SourceError::EmptyName));
        assert_eq!(split_source(""), Err(SourceError::EmptyName));
    }

    #[test]
    fn orders_by_weight_then_given_order() {
        let got = order_sources(vec![
            ("title".into(), Weight::A),
            ("content".into(), Weight::C),
            ("summary".into(), Weight::B),
            ("tags".into(), Weight::D),
            ("subtitle".into(), Weight::A),
        ]);
        let names: Vec<&str> = got.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["title", "subtitle", "summary", "content", "tags"]);
        assert_eq!(source_arg("title", Weight::A), "title:A");
    }

    #[test]
    fn the_word_being_typed_is_the_last_one() {
        let t = split_typing("postgres index tun");
        assert_eq!(
            t,
            Typing {
                rest: "postgres index",
                word: Some("tun"),
                or: false
            }
        );
        assert_eq!(split_typing("tun").word, Some("tun"));
        assert_eq!(split_typing("tun").rest, "");
        // a space after it: the word is finished
        assert_eq!(split_typing("postgres index ").word, None);
        assert_eq!(split_typing("").word, None);
        assert_eq!(split_typing("   ").word, None);
    }

    #[test]
    fn operators_quotes_and_punctuated_tokens_are_not_prefixes() {
        assert_eq!(split_typing("postgres -mysq").word, None);
        assert_eq!(split_typing("\"full text sea").word, None);
        assert_eq!(split_typing("\"full text\" sea").word, Some("sea"));
        assert_eq!(split_typing("cats or").word, None);
        assert_eq!(split_typing("cats OR").word, None);
        assert_eq!(split_typing("e-mai").word, None);
        assert_eq!(split_typing("c++").word, None);
        assert_eq!(split_typing("example.co").word, None);
        // letters of any script, digits
        assert_eq!(split_typing("straße grü").word, Some("grü"));
        assert_eq!(split_typing("pg18").word, Some("pg18"));
    }

    #[test]
    fn a_word_after_or_is_an_alternative() {
        let t = split_typing("cats or dog");
        assert_eq!(
            t,
            Typing {
                rest: "cats",
                word: Some("dog"),
                or: true
            }
        );
        let t = split_typing("or dog");
        assert_eq!(
            t,
            Typing {
                rest: "",
                word: Some("dog"),
                or: true
            }
        );
        // "color" ends in "or" but is a word
        let t = split_typing("color dog");
        assert_eq!(
            t,
            Typing {
                rest: "color",
                word: Some("dog"),
                or: false
            }
        );
    }

    #[test]
    fn lexemes_are_quoted_for_tsquery_input() {
        assert_eq!(lexeme_query("tune"), "'tune'");
        assert_eq!(lexeme_query("tun:*"), "'tun':*");
        assert_eq!(lexeme_query("o'neil"), "'o''neil'");
        assert_eq!(lexeme_query("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn word_keys_tell_tables_and_words_apart() {
        assert_eq!(word_key(1, b"tune"), word_key(1, b"tune"));
        assert_ne!(word_key(1, b"tune"), word_key(2, b"tune"));
        assert_ne!(word_key(1, b"tune"), word_key(1, b"tun"));
    }
}
