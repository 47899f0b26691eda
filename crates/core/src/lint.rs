//! Migration lint rules (`storage.lint_migration`): what each statement of a script does, as
//! PostgreSQL's own parser saw it (the extension turns its raw parse trees into [`Statement`]s),
//! checked against the catalog the script will meet ([`Catalog`]). Rules after squawk's, decided
//! here once: 'error' for what locks or rewrites a table that already exists, 'warning' for what
//! may break readers or takes ACCESS EXCLUSIVE on a large table.

/// One effect of a statement on the schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// CREATE TABLE (exempts the table from the later rules of the same script).
    CreateTable { table: String },
    /// CREATE INDEX.
    CreateIndex { table: String, concurrent: bool },
    /// ALTER TABLE … ADD COLUMN.
    AddColumn {
        table: String,
        column: String,
        not_null: bool,
        has_default: bool,
        /// The functions the default calls (qualified as written).
        default_functions: Vec<String>,
    },
    /// ALTER TABLE … ALTER COLUMN … TYPE.
    AlterColumnType {
        table: String,
        column: String,
        new_type: String,
    },
    /// ALTER TABLE … ADD CONSTRAINT (or a column's REFERENCES / CHECK).
    AddConstraint {
        table: String,
        kind: &'static str,
        not_valid: bool,
    },
    /// DROP TABLE.
    DropTable { tables: Vec<String> },
    /// ALTER TABLE … DROP COLUMN.
    DropColumn { table: String, column: String },
    /// ALTER TABLE … RENAME (TO | COLUMN).
    Rename {
        table: String,
        column: Option<String>,
    },
}

/// One statement of a script: its position (1-based), its command tag, what it does, whether it
/// runs CONCURRENTLY, and the tables it locks ACCESS EXCLUSIVE.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Statement {
    pub n: usize,
    pub tag: String,
    pub commands: Vec<Command>,
    pub concurrently: bool,
    pub access_exclusive: Vec<String>,
}

/// What the rules ask of the database the script will run in.
pub trait Catalog {
    /// Whether the table exists now.
    fn table_exists(&mut self, table: &str) -> bool;
    /// Its size on disk (heap, indexes, TOAST), when it exists.
    fn table_bytes(&mut self, table: &str) -> Option<i64>;
    /// Whether a function of that name is volatile (any overload).
    fn is_volatile(&mut self, function: &str) -> bool;
    /// Whether changing the column to the type rewrites the table (not binary coercible).
    fn type_change_rewrites(&mut self, table: &str, column: &str, new_type: &str) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding: the statement, the rule, its severity, what and how to do it instead.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub statement: usize,
    pub rule: &'static str,
    pub severity: Severity,
    pub message: String,
    pub hint: String,
}

/// The rules' names, each with its severity (docs/migrations.md).
pub const RULES: [(&str, Severity); 11] = [
    ("require-concurrent-index-creation", Severity::Error),
    ("adding-not-nullable-field", Severity::Error),
    ("changing-column-type", Severity::Error),
    ("constraint-missing-not-valid", Severity::Error),
    ("adding-volatile-default", Severity::Warning),
    ("dropping-table", Severity::Warning),
    ("dropping-column", Severity::Warning),
    ("renaming-table", Severity::Warning),
    ("renaming-column", Severity::Warning),
    ("concurrently-in-transaction", Severity::Warning),
    ("access-exclusive-on-large-table", Severity::Warning),
];

fn severity(rule: &str) -> Severity {
    RULES
        .iter()
        .find(|(r, _)| *r == rule)
        .map(|(_, s)| *s)
        .unwrap_or(Severity::Warning)
}

/// Lints `statements`: `transactional` is whether the migration runs in one transaction;
/// `large_table_bytes` the size from which ACCESS EXCLUSIVE is reported.
pub fn lint(
    statements: &[Statement],
    transactional: bool,
    large_table_bytes: i64,
    catalog: &mut dyn Catalog,
) -> Vec<Finding> {
    let mut created: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for s in statements {
        let mut find = |rule: &'static str, message: String, hint: String| {
            out.push(Finding {
                statement: s.n,
                rule,
                severity: severity(rule),
                message,
                hint,
            });
        };
        // a table made earlier in this script (or by this statement) is exempt: nobody reads it yet
        let existing = |table: &str, catalog: &mut dyn Catalog, created: &[String]| {
            !created.iter().any(|c| c == table) && catalog.table_exists(table)
        };
        for c in &s.commands {
            match c {
                Command::CreateTable { table } => created.push(table.clone()),
                Command::CreateIndex { table, concurrent } => {
                    if !concurrent && existing(table, catalog, &created) {
                        find(
                            "require-concurrent-index-creation",
                            format!("CREATE INDEX on existing table {table} blocks its writes for the whole build"),
                            "Use CREATE INDEX CONCURRENTLY in a migration with transactional => false.".into(),
                        );
                    }
                }
                Command::AddColumn {
                    table,
                    column,
                    not_null,
                    has_default,
                    default_functions,
                } => {
                    if !existing(table, catalog, &created) {
                        continue;
                    }
                    if *not_null && !has_default {
                        find(
                            "adding-not-nullable-field",
                            format!("ADD COLUMN {column} NOT NULL without a default fails on a table with rows ({table})"),
                            format!("Add it nullable (or with a constant DEFAULT), backfill, then SELECT storage.add_not_null('{table}', '{column}') (a CHECK NOT VALID, validated without blocking writers, then SET NOT NULL without a scan)."),
                        );
                    }
                    if let Some(f) = default_functions.iter().find(|f| catalog.is_volatile(f)) {
                        find(
                            "adding-volatile-default",
                            format!("the default of {column} calls the volatile {f}(): ADD COLUMN rewrites {table} under ACCESS EXCLUSIVE"),
                            "Add the column without the default, SET DEFAULT, then backfill existing rows in batches.".into(),
                        );
                    }
                }
                Command::AlterColumnType {
                    table,
                    column,
                    new_type,
                } => {
                    if existing(table, catalog, &created)
                        && catalog.type_change_rewrites(table, column, new_type)
                    {
                        find(
                            "changing-column-type",
                            format!("changing {table}.{column} to {new_type} rewrites the table and its indexes under ACCESS EXCLUSIVE"),
                            format!("SELECT storage.alter_column_type('{table}', '{column}', '{new_type}') in a migration with transactional => false: a new column kept in step, backfilled in batches, swapped in milliseconds. Or choose a binary-coercible type (varchar to text, a longer varchar)."),
                        );
                    }
                }
                Command::AddConstraint {
                    table,
                    kind,
                    not_valid,
                } => {
                    if !not_valid
                        && (*kind == "FOREIGN KEY" || *kind == "CHECK")
                        && existing(table, catalog, &created)
                    {
                        find(
                            "constraint-missing-not-valid",
                            format!("ADD {kind} on {table} scans the whole table while it blocks writes"),
                            "storage.add_check or storage.add_foreign_key (NOT VALID, then validated without blocking writers); or add it NOT VALID and VALIDATE CONSTRAINT in a later migration (it takes a weaker lock).".into(),
                        );
                    }
                }
                Command::DropTable { tables } => {
                    for t in tables {
                        find(
                            "dropping-table",
                            format!("DROP TABLE {t} loses its rows and breaks every reader still using it"),
                            "Stop reading and writing it in a release before, and keep a backup.".into(),
                        );
                    }
                }
                Command::DropColumn { table, column } => find(
                    "dropping-column",
                    format!("DROP COLUMN {table}.{column} breaks readers that still select it"),
                    "Stop using the column in a release before dropping it.".into(),
                ),
                Command::Rename { table, column } => match column {
                    Some(col) => find(
                        "renaming-column",
                        format!("renaming {table}.{col} breaks readers that use the old name"),
                        "Add the new column (or a view with both names), move readers, then drop the old one.".into(),
                    ),
                    None => find(
                        "renaming-table",
                        format!("renaming {table} breaks readers that use the old name"),
                        "Create a view with the old name while readers move.".into(),
                    ),
                },
            }
        }
        if s.concurrently && transactional {
            find(
                "concurrently-in-transaction",
                format!(
                    "{} … CONCURRENTLY cannot run inside a transaction block",
                    s.tag
                ),
                "Apply it in a migration of its own with transactional => false.".into(),
            );
        }
        for t in &s.access_exclusive {
            if created.iter().any(|c| c == t) {
                continue;
            }
            if let Some(bytes) = catalog.table_bytes(t).filter(|b| *b >= large_table_bytes) {
                find(
                    "access-exclusive-on-large-table",
                    format!(
                        "{} takes ACCESS EXCLUSIVE on {t} ({} MB): every reader queues behind it",
                        s.tag,
                        bytes / (1024 * 1024)
                    ),
                    "Keep the statement short (lock_timeout bounds the wait) or use a form that takes a weaker lock.".into(),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Db {
        tables: Vec<(&'static str, i64)>,
    }

    impl Catalog for Db {
        fn table_exists(&mut self, table: &str) -> bool {
            self.tables.iter().any(|(t, _)| *t == table)
        }
        fn table_bytes(&mut self, table: &str) -> Option<i64> {
            self.tables
                .iter()
                .find(|(t, _)| *t == table)
                .map(|(_, b)| *b)
        }
        fn is_volatile(&mut self, function: &str) -> bool {
            matches!(function, "random" | "clock_timestamp" | "gen_random_uuid")
        }
        fn type_change_rewrites(&mut self, _: &str, _: &str, new_type: &str) -> bool {
            new_type != "text"
        }
    }

    fn db() -> Db {
        Db {
            tables: vec![("users", 1 << 20), ("big", 1 << 30)],
        }
    }

    fn stmt(n: usize, commands: Vec<Command>) -> Statement {
        Statement {
            n,
            tag: "ALTER TABLE".into(),
            commands,
            ..Default::default()
        }
    }

    fn rules(s: &[Statement], transactional: bool) -> Vec<(usize, &'static str, &'static str)> {
        lint(s, transactional, 100 << 20, &mut db())
            .into_iter()
            .map(|f| (f.statement, f.rule, f.severity.as_str()))
            .collect()
    }

    #[test]
    fn index_on_an_existing_table_needs_concurrently() {
        let plain = |t: &str, c| {
            stmt(
                1,
                vec![Command::CreateIndex {
                    table: t.into(),
                    concurrent: c,
                }],
            )
        };
        assert_eq!(
            rules(&[plain("users", false)], true),
            vec![(1, "require-concurrent-index-creation", "error")]
        );
        assert!(rules(&[plain("users", true)], false).is_empty());
        assert!(rules(&[plain("missing", false)], true).is_empty());
        // a table created earlier in the same script is exempt
        let made = stmt(
            1,
            vec![Command::CreateTable {
                table: "users".into(),
            }],
        );
        assert!(rules(&[made, plain("users", false)], true).is_empty());
    }

    #[test]
    fn add_column_rules() {
        let add = |not_null, has_default, f: &[&str]| {
            stmt(
                1,
                vec![Command::AddColumn {
                    table: "users".into(),
                    column: "c".into(),
                    not_null,
                    has_default,
                    default_functions: f.iter().map(|s| s.to_string()).collect(),
                }],
            )
        };
        assert_eq!(
            rules(&[add(true, false, &[])], true),
            vec![(1, "adding-not-nullable-field", "error")]
        );
        assert!(rules(&[add(true, true, &[])], true).is_empty());
        assert!(rules(&[add(false, false, &[])], true).is_empty());
        assert_eq!(
            rules(&[add(false, true, &["clock_timestamp"])], true),
            vec![(1, "adding-volatile-default", "warning")]
        );
        assert!(rules(&[add(false, true, &["now"])], true).is_empty());
    }

    #[test]
    fn type_change_constraint_drop_rename() {
        let ty = |t: &str| {
            stmt(
                1,
                vec![Command::AlterColumnType {
                    table: "users".into(),
                    column: "c".into(),
                    new_type: t.into(),
                }],
            )
        };
        assert_eq!(
            rules(&[ty("bigint")], true),
            vec![(1, "changing-column-type", "error")]
        );
        assert!(rules(&[ty("text")], true).is_empty());
        let fk = |not_valid| {
            stmt(
                1,
                vec![Command::AddConstraint {
                    table: "users".into(),
                    kind: "FOREIGN KEY",
                    not_valid,
                }],
            )
        };
        assert_eq!(
            rules(&[fk(false)], true),
            vec![(1, "constraint-missing-not-valid", "error")]
        );
        assert!(rules(&[fk(true)], true).is_empty());
        let unique = stmt(
            1,
            vec![Command::AddConstraint {
                table: "users".into(),
                kind: "UNIQUE",
                not_valid: false,
            }],
        );
        assert!(rules(&[unique], true).is_empty());
        let s = vec![
            stmt(
                1,
                vec![Command::DropTable {
                    tables: vec!["a".into(), "b".into()],
                }],
            ),
            stmt(
                2,
                vec![Command::DropColumn {
                    table: "users".into(),
                    column: "c".into(),
                }],
            ),
            stmt(
                3,
                vec![Command::Rename {
                    table: "users".into(),
                    column: None,
                }],
            ),
            stmt(
                4,
                vec![Command::Rename {
                    table: "users".into(),
                    column: Some("c".into()),
                }],
            ),
        ];
        assert_eq!(
            rules(&s, true),
            vec![
                (1, "dropping-table", "warning"),
                (1, "dropping-table", "warning"),
                (2, "dropping-column", "warning"),
                (3, "renaming-table", "warning"),
                (4, "renaming-column", "warning")
            ]
        );
    }

    #[test]
    fn concurrently_and_large_tables() {
        let conc = Statement {
            n: 1,
            tag: "CREATE INDEX".into(),
            concurrently: true,
            ..Default::default()
        };
        assert_eq!(
            rules(std::slice::from_ref(&conc), true),
            vec![(1, "concurrently-in-transaction", "warning")]
        );
        assert!(rules(&[conc], false).is_empty());
        let lock = |t: &str| Statement {
            n: 1,
            tag: "ALTER TABLE".into(),
            access_exclusive: vec![t.into()],
            ..Default::default()
        };
        assert_eq!(
            rules(&[lock("big")], true),
            vec![(1, "access-exclusive-on-large-table", "warning")]
        );
        assert!(rules(&[lock("users")], true).is_empty());
        assert!(rules(&[lock("missing")], true).is_empty());
    }

    #[test]
    fn every_rule_has_one_severity() {
        for (i, (r, _)) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|(o, _)| o != r), "{r} twice");
        }
        assert_eq!(
            RULES.iter().filter(|(_, s)| *s == Severity::Error).count(),
            4
        );
    }
}
