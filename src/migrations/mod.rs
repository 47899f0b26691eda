//! Migrations capability: PostgreSQL's own parser splits a migration into statements and tells
//! the linter what each one does (the rules are pure logic in `pg_storage_core::lint`); history,
//! hooks and the orchestration are SQL in `sql/migrations.sql`; the runner of non-transactional
//! migrations is a worker ([`runner`]), and a failed migration's record is kept by an autonomous
//! transaction ([`autonomous`]).

pub(crate) mod autonomous;
pub(crate) mod online;
pub(crate) mod runner;

use crate::error::spi_failed;
use crate::ident::quote;
use pg_storage_core::lint::{self, Catalog, Command, Statement};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::PgList;
use std::ffi::{c_char, CStr};

unsafe fn text(p: *const c_char) -> Option<String> {
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

pub(crate) unsafe fn list<T>(l: *mut pg_sys::List) -> Vec<*mut T> {
    unsafe { PgList::<T>::from_pg(l) }.iter_ptr().collect()
}

/// `schema.table` (each part quoted as needed), as written.
unsafe fn relation(rv: *mut pg_sys::RangeVar) -> String {
    if rv.is_null() {
        return String::new();
    }
    unsafe {
        let rel = text((*rv).relname).unwrap_or_default();
        match text((*rv).schemaname) {
            Some(s) => format!("{}.{}", quote(&s), quote(&rel)),
            None => quote(&rel),
        }
    }
}

/// A qualified name given as a list of String nodes (DROP TABLE's objects, function names).
unsafe fn name_list(l: *mut pg_sys::List) -> String {
    unsafe { list::<pg_sys::String>(l) }
        .into_iter()
        .map(|s| quote(&unsafe { text((*s).sval) }.unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(".")
}

pub(crate) fn is(node: *mut pg_sys::Node, tag: pg_sys::NodeTag) -> bool {
    // SAFETY: every parse node starts with its tag
    !node.is_null() && unsafe { (*node).type_ } == tag
}

/// The functions a raw expression calls (the walk checks the stack: a nesting too deep is
/// `54001`, raised as an error, never a crash).
unsafe fn functions(expr: *mut pg_sys::Node) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    crate::guard::walk_raw(expr, &mut |node| {
        if is(node, pg_sys::NodeTag::T_FuncCall) {
            // SAFETY: a FuncCall node of the parse tree being walked
            names.push(unsafe { name_list((*(node as *mut pg_sys::FuncCall)).funcname) });
        }
    });
    names
}

fn constraint_kind(c: pg_sys::ConstrType::Type) -> Option<&'static str> {
    match c {
        pg_sys::ConstrType::CONSTR_FOREIGN => Some("FOREIGN KEY"),
        pg_sys::ConstrType::CONSTR_CHECK => Some("CHECK"),
        pg_sys::ConstrType::CONSTR_UNIQUE => Some("UNIQUE"),
        pg_sys::ConstrType::CONSTR_PRIMARY => Some("PRIMARY KEY"),
        pg_sys::ConstrType::CONSTR_EXCLUSION => Some("EXCLUDE"),
        _ => None,
    }
}

/// ALTER TABLE … ADD COLUMN: the column and its inline constraints.
unsafe fn add_column(table: &str, def: *mut pg_sys::ColumnDef, out: &mut Vec<Command>) {
    unsafe {
        let column = text((*def).colname).unwrap_or_default();
        let mut not_null = (*def).is_not_null;
        let mut default = (*def).raw_default;
        let mut constraints = Vec::new();
        for c in list::<pg_sys::Constraint>((*def).constraints) {
            match (*c).contype {
                pg_sys::ConstrType::CONSTR_NOTNULL | pg_sys::ConstrType::CONSTR_PRIMARY => {
                    not_null = true
                }
                pg_sys::ConstrType::CONSTR_DEFAULT => default = (*c).raw_expr,
                _ => {}
            }
            if let Some(kind) = constraint_kind((*c).contype) {
                constraints.push(Command::AddConstraint {
                    table: table.to_owned(),
                    kind,
                    not_valid: (*c).skip_validation,
                });
            }
        }
        let type_name = if (*def).typeName.is_null() {
            String::new()
        } else {
            text(pg_sys::TypeNameToString((*def).typeName)).unwrap_or_default()
        };
        let serial = matches!(
            type_name.as_str(),
            "serial" | "bigserial" | "smallserial" | "serial4" | "serial8" | "serial2"
        );
        let identity = (*def).identity != 0;
        let generated = (*def).generated != 0;
        let mut default_functions = if default.is_null() {
            Vec::new()
        } else {
            functions(default)
        };
        if serial || identity {
            default_functions.push("nextval".into());
        }
        out.push(Command::AddColumn {
            table: table.to_owned(),
            column,
            not_null,
            has_default: !default.is_null() || serial || identity || generated,
            default_functions,
        });
        out.extend(constraints);
    }
}

/// A type name with its modifiers as written (`character varying(20)`), for `to_regtypemod`.
unsafe fn type_text(t: *mut pg_sys::TypeName) -> String {
    unsafe {
        let base = text(pg_sys::TypeNameToString(t)).unwrap_or_default();
        let mods: Vec<String> = list::<pg_sys::Node>((*t).typmods)
            .into_iter()
            .filter_map(|m| {
                if is(m, pg_sys::NodeTag::T_A_Const) {
                    let c = m as *mut pg_sys::A_Const;
                    if is(
                        &raw mut (*c).val as *mut pg_sys::Node,
                        pg_sys::NodeTag::T_Integer,
                    ) {
                        return Some((*c).val.ival.ival.to_string());
                    }
                }
                None
            })
            .collect();
        if mods.is_empty() {
            base
        } else {
            format!("{base}({})", mods.join(","))
        }
    }
}

/// What one raw statement does.
unsafe fn describe(n: usize, raw: *mut pg_sys::RawStmt) -> Statement {
    unsafe {
        let node = (*raw).stmt;
        let tag =
            text(pg_sys::GetCommandTagName(pg_sys::CreateCommandTag(node))).unwrap_or_default();
        let mut s = Statement {
            n,
            tag,
            ..Default::default()
        };
        match (*node).type_ {
            pg_sys::NodeTag::T_CreateStmt => s.commands.push(Command::CreateTable {
                table: relation((*(node as *mut pg_sys::CreateStmt)).relation),
            }),
            pg_sys::NodeTag::T_CreateTableAsStmt => {
                let into = (*(node as *mut pg_sys::CreateTableAsStmt)).into;
                if !into.is_null() {
                    s.commands.push(Command::CreateTable {
                        table: relation((*into).rel),
                    });
                }
            }
            pg_sys::NodeTag::T_IndexStmt => {
                let i = node as *mut pg_sys::IndexStmt;
                s.concurrently = (*i).concurrent;
                s.commands.push(Command::CreateIndex {
                    table: relation((*i).relation),
                    concurrent: (*i).concurrent,
                });
            }
            pg_sys::NodeTag::T_AlterTableStmt => {
                let a = node as *mut pg_sys::AlterTableStmt;
                if (*a).objtype != pg_sys::ObjectType::OBJECT_TABLE {
                    return s;
                }
                let table = relation((*a).relation);
                for cmd in list::<pg_sys::AlterTableCmd>((*a).cmds) {
                    let column = text((*cmd).name).unwrap_or_default();
                    match (*cmd).subtype {
                        pg_sys::AlterTableType::AT_AddColumn => add_column(
                            &table,
                            (*cmd).def as *mut pg_sys::ColumnDef,
                            &mut s.commands,
                        ),
                        pg_sys::AlterTableType::AT_AlterColumnType => {
                            let def = (*cmd).def as *mut pg_sys::ColumnDef;
                            if !def.is_null() && !(*def).typeName.is_null() {
                                s.commands.push(Command::AlterColumnType {
                                    table: table.clone(),
                                    column,
                                    new_type: type_text((*def).typeName),
                                });
                            }
                        }
                        pg_sys::AlterTableType::AT_AddConstraint => {
                            let c = (*cmd).def as *mut pg_sys::Constraint;
                            if let Some(kind) = constraint_kind((*c).contype) {
                                s.commands.push(Command::AddConstraint {
                                    table: table.clone(),
                                    kind,
                                    not_valid: (*c).skip_validation,
                                });
                            }
                        }
                        pg_sys::AlterTableType::AT_DropColumn => {
                            s.commands.push(Command::DropColumn {
                                table: table.clone(),
                                column,
                            })
                        }
                        pg_sys::AlterTableType::AT_DetachPartition => {
                            let p = (*cmd).def as *mut pg_sys::PartitionCmd;
                            s.concurrently |= !p.is_null() && (*p).concurrent;
                        }
                        _ => {}
                    }
                }
                if pg_sys::AlterTableGetLockLevel((*a).cmds)
                    == pg_sys::AccessExclusiveLock as pg_sys::LOCKMODE
                {
                    s.access_exclusive.push(table);
                }
            }
            pg_sys::NodeTag::T_RenameStmt => {
                let r = node as *mut pg_sys::RenameStmt;
                let table = relation((*r).relation);
                match (*r).renameType {
                    pg_sys::ObjectType::OBJECT_TABLE => {
                        s.commands.push(Command::Rename {
                            table: table.clone(),
                            column: None,
                        });
                        s.access_exclusive.push(table);
                    }
                    pg_sys::ObjectType::OBJECT_COLUMN
                        if (*r).relationType == pg_sys::ObjectType::OBJECT_TABLE =>
                    {
                        s.commands.push(Command::Rename {
                            table: table.clone(),
                            column: text((*r).subname),
                        });
                        s.access_exclusive.push(table);
                    }
                    _ => {}
                }
            }
            pg_sys::NodeTag::T_DropStmt => {
                let d = node as *mut pg_sys::DropStmt;
                s.concurrently = (*d).concurrent;
                if (*d).removeType == pg_sys::ObjectType::OBJECT_TABLE {
                    let tables = list::<pg_sys::List>((*d).objects)
                        .into_iter()
                        .map(|o| name_list(o))
                        .collect();
                    s.commands.push(Command::DropTable { tables });
                }
            }
            pg_sys::NodeTag::T_ReindexStmt => {
                let r = node as *mut pg_sys::ReindexStmt;
                s.concurrently = list::<pg_sys::DefElem>((*r).params)
                    .into_iter()
                    .any(|d| text((*d).defname).as_deref() == Some("concurrently"));
            }
            pg_sys::NodeTag::T_TruncateStmt => {
                for rv in list::<pg_sys::RangeVar>((*(node as *mut pg_sys::TruncateStmt)).relations)
                {
                    s.access_exclusive.push(relation(rv));
                }
            }
            pg_sys::NodeTag::T_LockStmt => {
                let l = node as *mut pg_sys::LockStmt;
                if (*l).mode == pg_sys::AccessExclusiveLock as i32 {
                    for rv in list::<pg_sys::RangeVar>((*l).relations) {
                        s.access_exclusive.push(relation(rv));
                    }
                }
            }
            pg_sys::NodeTag::T_ClusterStmt => {
                let c = node as *mut pg_sys::ClusterStmt;
                if !(*c).relation.is_null() {
                    s.access_exclusive.push(relation((*c).relation));
                }
            }
            pg_sys::NodeTag::T_VacuumStmt => {
                let v = node as *mut pg_sys::VacuumStmt;
                let full = list::<pg_sys::DefElem>((*v).options)
                    .into_iter()
                    .any(|d| text((*d).defname).as_deref() == Some("full"));
                if full {
                    for r in list::<pg_sys::VacuumRelation>((*v).rels) {
                        s.access_exclusive.push(relation((*r).relation));
                    }
                }
            }
            _ => {}
        }
        s
    }
}

/// The name of the index a CREATE INDEX makes, in its table's schema as written.
unsafe fn index_name(raw: *mut pg_sys::RawStmt) -> Option<String> {
    unsafe {
        let node = (*raw).stmt;
        if !is(node, pg_sys::NodeTag::T_IndexStmt) {
            return None;
        }
        let i = node as *mut pg_sys::IndexStmt;
        let name = quote(&text((*i).idxname)?);
        let rv = (*i).relation;
        Some(match text((*rv).schemaname) {
            Some(s) => format!("{}.{name}", quote(&s)),
            None => name,
        })
    }
}

/// The statements of a script as PostgreSQL parses them: each one's text and what it does.
/// A syntax error is PostgreSQL's own (42601, with its position).
fn parse(sql: &str) -> Vec<(String, Statement, Option<String>)> {
    let c = std::ffi::CString::new(sql).unwrap_or_else(|_| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "a migration may not contain a NUL byte",
            None,
            Some("Remove the NUL byte from the script.".into()),
        )
    });
    let bytes = sql.as_bytes();
    // SAFETY: the parser's result lives in the current memory context for this call.
    unsafe {
        list::<pg_sys::RawStmt>(pg_sys::pg_parse_query(c.as_ptr()))
            .into_iter()
            .enumerate()
            .map(|(i, raw)| {
                let start = ((*raw).stmt_location.max(0) as usize).min(bytes.len());
                let end = if (*raw).stmt_len > 0 {
                    (start + (*raw).stmt_len as usize).min(bytes.len())
                } else {
                    bytes.len()
                };
                let text = String::from_utf8_lossy(&bytes[start..end])
                    .trim()
                    .to_owned();
                (text, describe(i + 1, raw), index_name(raw))
            })
            .collect()
    }
}

/// Internal: the statements of a migration, in order: position, text, command tag, and the
/// index a CREATE INDEX names (qualified as its table is), to find what an interrupted build left.
#[pg_extern(immutable, strict, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn _migration_statements(
    sql: &str,
) -> TableIterator<
    'static,
    (
        name!(n, i32),
        name!(statement, String),
        name!(tag, String),
        name!(index_name, Option<String>),
    ),
> {
    TableIterator::new(
        parse(sql)
            .into_iter()
            .map(|(text, s, index)| (s.n as i32, text, s.tag, index)),
    )
}

/// The catalog as the migration will see it: names resolved with the caller's search_path.
struct Live<'a> {
    client: &'a pgrx::spi::SpiClient<'a>,
}

impl Live<'_> {
    fn one<T: pgrx::FromDatum + pgrx::IntoDatum>(
        &self,
        sql: &str,
        args: &[pgrx::datum::DatumWithOid<'_>],
    ) -> Option<T> {
        self.client
            .select(sql, Some(1), args)
            .unwrap_or_else(|e| spi_failed(e))
            .first()
            .get::<T>(1)
            .ok()
            .flatten()
    }
}

impl Catalog for Live<'_> {
    fn table_exists(&mut self, table: &str) -> bool {
        self.one::<bool>(
            "SELECT pg_catalog.to_regclass($1) IS NOT NULL",
            &[table.into()],
        )
        .unwrap_or(false)
    }
    fn table_bytes(&mut self, table: &str) -> Option<i64> {
        self.one::<i64>(
            "SELECT pg_catalog.pg_total_relation_size(c.oid) FROM pg_catalog.pg_class c \
              WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)",
            &[table.into()],
        )
    }
    fn is_volatile(&mut self, function: &str) -> bool {
        self.one::<bool>(
            "SELECT pg_catalog.bool_or(f.provolatile OPERATOR(pg_catalog.=) 'v') \
               FROM pg_catalog.pg_proc f, pg_catalog.parse_ident($1) AS n(p) \
              WHERE f.proname OPERATOR(pg_catalog.=) n.p[pg_catalog.cardinality(n.p)]",
            &[function.into()],
        )
        .unwrap_or(false)
    }
    fn type_change_rewrites(&mut self, table: &str, column: &str, new_type: &str) -> bool {
        self.one::<bool>(
            "SELECT storage._type_change_rewrites(pg_catalog.to_regclass($1), $2, $3)",
            &[table.into(), column.into(), new_type.into()],
        )
        .unwrap_or(true)
    }
}

/// Internal: `storage.lint_migration` with the caller's search_path (names in the script
/// resolve as they will when it runs) and the large-table size.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::type_complexity)]
fn _lint_migration(
    sql: &str,
    transactional: bool,
    caller_search_path: &str,
    large_table_bytes: i64,
) -> TableIterator<
    'static,
    (
        name!(statement, i32),
        name!(rule, String),
        name!(severity, String),
        name!(message, String),
        name!(hint, String),
    ),
> {
    let statements: Vec<Statement> = parse(sql).into_iter().map(|(_, s, _)| s).collect();
    let findings = pgrx::Spi::connect(|client| {
        // every query below is schema-qualified; the path is for the script's names
        client
            .select(
                "SELECT pg_catalog.set_config('search_path', $1, true)",
                None,
                &[caller_search_path.into()],
            )
            .unwrap_or_else(|e| spi_failed(e));
        let mut catalog = Live { client };
        let found = lint::lint(&statements, transactional, large_table_bytes, &mut catalog);
        client
            .select(
                "SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)",
                None,
                &[],
            )
            .unwrap_or_else(|e| spi_failed(e));
        found
    });
    TableIterator::new(findings.into_iter().map(|f| {
        (
            f.statement as i32,
            f.rule.to_owned(),
            f.severity.as_str().to_owned(),
            f.message,
            f.hint,
        )
    }))
}

/// Internal: `storage.migrate` with the caller's search_path. Notes the calling role (what a
/// SECURITY DEFINER function cannot see), then does the work as the extension's owner
/// (`storage._migrate_owner`): the history, the lock and the queue are the extension's, written
/// by nobody else; the migration's own SQL runs as the caller ([`_migration_run`]).
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn _migrate(
    version: Option<&str>,
    description: Option<&str>,
    up: Option<&str>,
    down: Option<&str>,
    pre_check: Option<&str>,
    post_check: Option<&str>,
    transactional: Option<bool>,
    allow: Option<Vec<Option<String>>>,
    caller_search_path: Option<&str>,
) -> Option<String> {
    crate::catalog::require_primary("storage.migrate");
    let caller = crate::privilege::current_user();
    crate::privilege::as_owner(|| {
        pgrx::Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT storage._migrate_owner($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    Some(1),
                    &[
                        version.into(),
                        description.into(),
                        up.into(),
                        down.into(),
                        pre_check.into(),
                        post_check.into(),
                        transactional.into(),
                        allow.into(),
                        caller_search_path.into(),
                        caller.into(),
                    ],
                )
                .and_then(|t| t.first().get_one::<String>())
                .unwrap_or_else(|e| spi_failed(e))
        })
    })
}

/// Internal: `storage.migrate_down` with the caller's search_path, as [`_migrate`] does it.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _migrate_down(
    version: Option<&str>,
    caller_search_path: Option<&str>,
    force: Option<bool>,
) -> Option<String> {
    crate::catalog::require_primary("storage.migrate_down");
    let caller = crate::privilege::current_user();
    crate::privilege::as_owner(|| {
        pgrx::Spi::connect_mut(|client| {
            client
                .update(
                    "SELECT storage._migrate_down_owner($1, $2, $3, $4)",
                    Some(1),
                    &[
                        version.into(),
                        caller_search_path.into(),
                        caller.into(),
                        force.into(),
                    ],
                )
                .and_then(|t| t.first().get_one::<String>())
                .unwrap_or_else(|e| spi_failed(e))
        })
    })
}

/// `search_path` as a C string (a NUL byte cannot be in a setting).
fn path(search_path: &str) -> std::ffi::CString {
    std::ffi::CString::new(search_path).unwrap_or_else(|_| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "a search_path may not contain a NUL byte",
            None,
            None,
        )
    })
}

/// The role stored SQL runs as: it must exist (a dropped author runs nothing).
fn author_role(author: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: a syscache lookup by OID
    let exists = author != pg_sys::InvalidOid
        && unsafe {
            pg_sys::SearchSysCacheExists(
                pg_sys::SysCacheIdentifier::AUTHOID as i32,
                author.into(),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
                pg_sys::Datum::from(0),
            )
        };
    if !exists {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_UNDEFINED_OBJECT,
            "the role that wrote this SQL no longer exists",
            Some(format!("Role OID {}.", author.to_u32())),
            Some("Stored SQL runs only as the role that wrote it.".into()),
        );
    }
    author
}

/// Internal: runs stored SQL of a migration (one statement of its script, a hook) as the role
/// that wrote it, `author`, with `search_path`; the extension's own role, settings and search
/// path are back afterwards. Not executable by anyone but the extension's owner.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _migration_run(sql: &str, search_path: &str, author: pg_sys::Oid) {
    let path = path(search_path);
    crate::privilege::as_author(author_role(author), &path, || {
        pgrx::Spi::connect_mut(|client| {
            client
                .update(sql, None, &[])
                .map(|_| ())
                .unwrap_or_else(|e| spi_failed(e))
        })
    })
}

/// Checks that a statement the extension wrote around stored SQL (`shape`) stayed whole once the
/// SQL is in it, by PostgreSQL's parser: one plain SELECT of one target whose FROM clause is
/// what `from` accepts and that has no other clause; else why not. What closes a parenthesis
/// early and glues on a statement, a clause or a set operation is refused. A syntax error is
/// PostgreSQL's own (`42601`).
pub(crate) fn check_wrapper(
    statement: &str,
    shape: &str,
    from: impl Fn(&[*mut pg_sys::Node]) -> bool,
) -> Result<(), String> {
    let Ok(c) = std::ffi::CString::new(statement) else {
        return Err("it contains a NUL byte".into());
    };
    // SAFETY: the parser's result lives in the current memory context for this call; a syntax
    // error is PostgreSQL's own, raised through pgrx's guarded call.
    unsafe {
        let raws = list::<pg_sys::RawStmt>(pg_sys::pg_parse_query(c.as_ptr()));
        if raws.len() != 1 {
            return Err(format!("it makes {} statements of {shape}", raws.len()));
        }
        let node = (*raws[0]).stmt;
        if !is(node, pg_sys::NodeTag::T_SelectStmt) {
            return Err(format!("it does not make {shape}"));
        }
        let s = node as *mut pg_sys::SelectStmt;
        let whole = (*s).op == pg_sys::SetOperation::SETOP_NONE
            && list::<pg_sys::Node>((*s).targetList).len() == 1
            && from(&list::<pg_sys::Node>((*s).fromClause))
            && (*s).distinctClause.is_null()
            && (*s).intoClause.is_null()
            && (*s).whereClause.is_null()
            && (*s).groupClause.is_null()
            && (*s).havingClause.is_null()
            && (*s).windowClause.is_null()
            && (*s).valuesLists.is_null()
            && (*s).sortClause.is_null()
            && (*s).limitOffset.is_null()
            && (*s).limitCount.is_null()
            && (*s).lockingClause.is_null()
            && (*s).withClause.is_null();
        if !whole {
            return Err(format!("it adds clauses or columns to {shape}"));
        }
    }
    Ok(())
}

/// The statement that evaluates a pre_check or post_check: `SELECT (<check>)::boolean` when the
/// check is exactly one expression, by PostgreSQL's parser; `42601` otherwise (a second
/// statement, a FROM or WHERE clause glued on after a closing parenthesis, ...).
fn check_statement(what: &str, check: &str) -> String {
    let statement = format!("SELECT (\n{check}\n)::pg_catalog.bool");
    let refuse = |why: &str| -> ! {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            format!("a {what} must be one SQL expression"),
            Some(format!("{why}; the {what} was: {check}")),
            Some(format!(
                "Write the {what} as one boolean expression, e.g. (SELECT count(*) FROM users) > 0."
            )),
        )
    };
    if let Err(why) = check_wrapper(&statement, "`SELECT (…)::boolean`", |from| {
        from.is_empty()
    }) {
        refuse(&why);
    }
    statement
}

/// Internal: the statement that evaluates a pre_check or post_check; `42601` unless the check
/// is exactly one SQL expression.
#[pg_extern(immutable, parallel_safe)]
#[search_path(pg_catalog, pg_temp)]
fn _migration_expression(what: &str, sql: &str) -> String {
    check_statement(what, sql)
}

/// Internal: the value of a pre_check or post_check (one SQL expression), evaluated as its
/// author with `search_path`.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _migration_check_value(
    what: &str,
    sql: &str,
    search_path: &str,
    author: pg_sys::Oid,
) -> Option<bool> {
    let statement = check_statement(what, sql);
    let path = path(search_path);
    crate::privilege::as_author(author_role(author), &path, || {
        pgrx::Spi::connect_mut(|client| {
            client
                .update(&statement, Some(1), &[])
                .and_then(|t| t.first().get_one::<bool>())
                .unwrap_or_else(|e| spi_failed(e))
        })
    })
}
