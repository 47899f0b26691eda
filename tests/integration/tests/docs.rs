//! The documentation (issue 37): every public function, procedure and view of the extension
//! appears in `docs/` as `schema.name`, the README stays short enough to read in five minutes,
//! and every relative link of the README and of `docs/*.md` points to a file that exists.

use pg_storage_integration::fresh_db;
use std::path::{Path, PathBuf};

/// The repository's root (this crate is tests/integration).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Every `docs/*.md`, with its text, in name order.
fn pages() -> Vec<(PathBuf, String)> {
    let dir = root().join("docs");
    let mut pages: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read a docs page");
            (p, text)
        })
        .collect();
    pages.sort();
    assert!(!pages.is_empty(), "no Markdown page in {}", dir.display());
    pages
}

fn identifier_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Whether `text` names `name` (`schema.name`) as a whole: not as the start of a longer name
/// (`storage.health` in `storage.health_report_html`) nor as the end of one.
fn mentions(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        !before.is_some_and(|c| identifier_char(c) || c == '.')
            && !after.is_some_and(identifier_char)
    })
}

#[test]
fn every_public_function_and_view_is_documented() {
    let mut db = fresh_db("itest_docs");
    let public: Vec<String> = db
        .query(
            "SELECT n.nspname || '.' || p.proname
               FROM pg_proc p
               JOIN pg_namespace n ON n.oid = p.pronamespace
               JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
               JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_storage_ext'
              WHERE n.nspname IN ('storage', 'audit') AND p.proname !~ '^_'
             UNION
             SELECT n.nspname || '.' || c.relname
               FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
               JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'
               JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'pg_storage_ext'
              WHERE n.nspname IN ('storage', 'audit') AND c.relkind IN ('v', 'm') AND c.relname !~ '^_'
             ORDER BY 1",
            &[],
        )
        .expect("the extension's public functions and views")
        .iter()
        .map(|r| r.get(0))
        .collect();
    // the catalog query itself: both schemas, functions and views (a broken query would pass)
    for known in [
        "storage.health",
        "audit.enable",
        "audit.log",
        "storage.progress",
    ] {
        assert!(
            public.iter().any(|n| n == known),
            "{known} missing from the catalog's list: {public:?}"
        );
    }
    let docs: String = pages()
        .into_iter()
        .map(|(_, text)| text)
        .collect::<Vec<_>>()
        .join("\n");
    let missing: Vec<&String> = public.iter().filter(|n| !mentions(&docs, n)).collect();
    assert!(
        missing.is_empty(),
        "{} of {} public functions and views appear in no docs/*.md page (write each as schema.name \
         in its capability's page): {}",
        missing.len(),
        public.len(),
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[test]
fn the_readme_is_at_most_300_lines() {
    let path = root().join("README.md");
    let lines = std::fs::read_to_string(&path)
        .expect("README.md")
        .lines()
        .count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; a newcomer reads it in five minutes at 300 at most: move \
         the details into docs/"
    );
}

/// The targets of the inline Markdown links `[text](target)` of `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        if let Some(end) = rest.find(')') {
            targets.push(rest[..end].trim().to_owned());
            rest = &rest[end..];
        }
    }
    targets
}

#[test]
fn every_relative_link_points_to_a_file() {
    let root = root();
    let mut files = vec![(root.join("README.md"), String::new())];
    files[0].1 = std::fs::read_to_string(&files[0].0).expect("README.md");
    files.extend(pages());
    let mut broken = Vec::new();
    let mut checked = 0;
    for (file, text) in &files {
        for target in link_targets(text) {
            // other sites, mail, and anchors within the same page are not files
            if target.contains("://") || target.starts_with("mailto:") || target.starts_with('#') {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let path = path.split_whitespace().next().unwrap_or_default();
            if path.is_empty() {
                continue;
            }
            checked += 1;
            let resolved = file.parent().expect("a page's folder").join(path);
            if !resolved.exists() {
                broken.push(format!(
                    "{} -> {target}",
                    file.strip_prefix(&root).unwrap_or(file).display()
                ));
            }
        }
    }
    assert!(
        checked > 0,
        "no relative link found: is the link parser right?"
    );
    assert!(
        broken.is_empty(),
        "{} relative links point to no file: {}",
        broken.len(),
        broken.join("; ")
    );
}

#[test]
fn mentions_takes_whole_names_only() {
    let text = "`storage.health_report_html()` and audit.log_id_seq, xstorage.progress";
    assert!(!mentions(text, "storage.health"));
    assert!(!mentions(text, "audit.log"));
    assert!(!mentions(text, "storage.progress"));
    assert!(mentions(text, "storage.health_report_html"));
    assert!(mentions("see `storage.health()`.", "storage.health"));
    assert!(mentions("storage.health", "storage.health"));
}
