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
}
