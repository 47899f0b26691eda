//! Audit capture options: what `audit.enable` writes into the capture triggers' arguments (as
//! `audit._capture_args` in sql/audit.sql encodes them) and what the trigger checks them against.
//!
//! A capture trigger carries its options in `pg_trigger.tgargs`, so they are dumped with the
//! trigger and visible in the catalog:
//! `[scope, capture_query, excluded column, ...]` where scope is `table` (the table `audit.enable`
//! was called on) or `partition` (a partition of it: rows are logged under the audited ancestor).
//! The trigger obeys the configuration (`audit._tracked`), not these arguments: it refuses to run
//! when they differ from [`Options::to_args`] of the configured options.

/// Where a capture trigger sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// On the audited table itself.
    Table,
    /// On a partition (at any depth) of an audited partitioned table.
    Partition,
}

/// The options of one capture trigger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub scope: Scope,
    pub capture_query: bool,
    /// Columns kept out of row images and `changed_columns`, without duplicates, in the order
    /// given.
    pub exclude: Vec<String>,
}

impl Options {
    pub fn new(scope: Scope, capture_query: bool, exclude: &[String]) -> Options {
        let mut seen = Vec::with_capacity(exclude.len());
        for c in exclude {
            if !seen.contains(c) {
                seen.push(c.clone());
            }
        }
        Options {
            scope,
            capture_query,
            exclude: seen,
        }
    }

    /// The trigger arguments that encode these options.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            match self.scope {
                Scope::Table => "table".to_owned(),
                Scope::Partition => "partition".to_owned(),
            },
            self.capture_query.to_string(),
        ];
        args.extend(self.exclude.iter().cloned());
        args
    }

    /// Options from trigger arguments; the error says which argument is wrong.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let scope = match args.first().map(String::as_str) {
            Some("table") => Scope::Table,
            Some("partition") => Scope::Partition,
            Some(other) => {
                return Err(format!(
                    "argument 1 must be 'table' or 'partition', got '{other}'"
                ))
            }
            None => return Err("the trigger has no arguments".to_owned()),
        };
        let capture_query = match args.get(1).map(String::as_str) {
            Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(format!(
                    "argument 2 must be 'true' or 'false', got '{other}'"
                ))
            }
            None => return Err("argument 2 (capture_query) is missing".to_owned()),
        };
        Ok(Options::new(scope, capture_query, &args[2..]))
    }
}

/// The columns that are not part of the key: `row_image - non_key` is the key as a jsonb object.
pub fn non_key(columns: &[String], key: &[String]) -> Vec<String> {
    columns
        .iter()
        .filter(|c| !key.contains(c))
        .cloned()
        .collect()
}

/// The columns logged, in table order: all but the excluded ones.
pub fn logged(columns: &[String], exclude: &[String]) -> Vec<String> {
    non_key(columns, exclude)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| (*x).to_owned()).collect()
    }

    #[test]
    fn options_round_trip_through_trigger_arguments() {
        let o = Options::new(
            Scope::Table,
            true,
            &s(&["password", "a \"b\".c", "password"]),
        );
        assert_eq!(o.exclude, s(&["password", "a \"b\".c"]));
        assert_eq!(o.to_args(), s(&["table", "true", "password", "a \"b\".c"]));
        assert_eq!(Options::parse(&o.to_args()), Ok(o));
        let p = Options::new(Scope::Partition, false, &[]);
        assert_eq!(p.to_args(), s(&["partition", "false"]));
        assert_eq!(Options::parse(&p.to_args()), Ok(p));
    }

    #[test]
    fn bad_arguments_are_named() {
        assert_eq!(
            Options::parse(&[]),
            Err("the trigger has no arguments".to_owned())
        );
        assert!(Options::parse(&s(&["tabel", "true"]))
            .unwrap_err()
            .contains("argument 1"));
        assert!(Options::parse(&s(&["table", "yes"]))
            .unwrap_err()
            .contains("argument 2"));
        assert!(Options::parse(&s(&["table"]))
            .unwrap_err()
            .contains("missing"));
    }

    #[test]
    fn column_arithmetic() {
        let cols = s(&["id", "tenant", "body", "secret"]);
        assert_eq!(
            non_key(&cols, &s(&["tenant", "id"])),
            s(&["body", "secret"])
        );
        assert_eq!(logged(&cols, &s(&["secret"])), s(&["id", "tenant", "body"]));
    }
}
