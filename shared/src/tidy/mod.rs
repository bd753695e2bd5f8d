//! Architecture invariants, checked by reading the crate's own source (rust-analyzer's `tidy.rs`
//! is the model): what `docs/ARCHITECTURE.md` promises about the layout is held by a test, not by
//! review.

use std::path::{Path, PathBuf};

mod paths;

/// The crate's top-level modules from the bottom up. A module may name (`crate::…`) only modules
/// below it, so dependencies point one way and no two modules can depend on each other:
/// api → capabilities → ports.
const LAYERS: &[&str] = &[
    // The vocabulary every layer shares: the one error type and whole-body validation.
    "error",
    "validate",
    // Exact quantities and amounts: fractions truncated to cents only at the end.
    "exact",
    // The ports: storage (and its migrations), the clock, ids, outbound HTTP, configuration and
    // their Spin adapters.
    "platform",
    // Idempotency keys: a principal's retries replay the first response, for the API and the
    // console alike, and bill runs purge the expired.
    "idempotency",
    // Money in whole cents and billing periods: the amounts and the calendar every capability
    // from listing to settlement counts in.
    "money",
    "period",
    // The capabilities, each on the ones it builds on.
    "identity",
    // Signed webhooks: the outbox every capability above writes its events to, in the
    // transaction of the change; delivered outside any transaction.
    "webhook",
    "listing",
    "sales",
    "catalog",
    "orders",
    "review",
    "metering",
    "billing",
    "settlement",
    // CSV exports of the capabilities' lists, written a page at a time, for the API and the
    // console alike.
    "export",
    // The web console: pages over the capabilities, beside the API and independent of it (it
    // sits below `api` so that it cannot reach into the API's handlers).
    "console",
    // The HTTP API as plain functions, and the components' entry points over it and the console.
    "api",
    "components",
];

/// The longest a Rust file of the workspace may grow before it is split (comments and tests
/// included, test files too).
const MAX_LINES: usize = 800;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source dir") {
        let path = entry.expect("readable dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The domain crate's sources but this module's, by path below `src/`, with their text.
fn crate_sources() -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let relative = path.strip_prefix(src_dir()).expect("below src/").to_owned();
            let text = std::fs::read_to_string(&path).expect("readable source");
            (!relative.starts_with("tidy")).then_some((relative, text))
        })
        .collect()
}

/// A file's module path: `src/billing/run.rs` → `billing::run`, `src/billing/mod.rs` →
/// `billing`, `src/error.rs` → `error`.
fn module_path(relative: &Path) -> Vec<String> {
    let mut path: Vec<String> = relative
        .components()
        .map(|c| {
            c.as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned()
        })
        .collect();
    if path
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        path.pop();
    }
    path
}

/// The code of a file without its unit tests (`#[cfg(test)] mod tests`, always last): tests may
/// reach across layers to set up a case.
fn without_tests(text: &str) -> &str {
    text.find("\n#[cfg(test)]\nmod tests")
        .map_or(text, |cut| &text[..cut])
}

/// The violations of the layering by one file of module path `module` with this code: every
/// path it names, through a `use` tree (grouped and nested imports included) or written out,
/// must start in its own top-level module or one below it.
fn layering_violations(module: &[&str], code: &str) -> Vec<String> {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let own = module.first().copied().unwrap_or_default();
    let Some(own_rank) = rank(own) else {
        return vec![format!(
            "`{own}` is not in tidy::LAYERS: place it in a layer"
        )];
    };
    let mut used: Vec<String> = paths::crate_paths(module, code)
        .into_iter()
        .filter_map(|p| p.into_iter().next())
        .filter(|top| top != own)
        .collect();
    used.sort();
    used.dedup();
    used.into_iter()
        .filter_map(|used| match rank(&used) {
            Some(r) if r < own_rank => None,
            Some(_) => Some(format!("`{own}` uses `crate::{used}`, which is above it")),
            None => Some(format!(
                "`{own}` uses `crate::{used}`, which is in no layer"
            )),
        })
        .collect()
}

#[test]
fn dependencies_point_down_the_layers() {
    let mut violations = Vec::new();
    for (relative, text) in crate_sources() {
        if relative == Path::new("lib.rs") {
            continue;
        }
        let module = module_path(&relative);
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        for v in layering_violations(&module, without_tests(&text)) {
            violations.push(format!("{}: {v}", relative.display()));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn an_import_against_the_direction_is_caught() {
    let upward = "use crate::platform::storage::Database;\nuse crate::billing::Bill;\n";
    assert_eq!(
        layering_violations(&["orders"], upward),
        ["`orders` uses `crate::billing`, which is above it"]
    );
    assert!(layering_violations(&["billing"], upward).is_empty());
    let grouped = "use crate::{error::ApiError, platform::{storage::Database, ids}};\n\
                   use crate::{exact::Exact, metering::{self, push::validate}};\n";
    assert_eq!(
        layering_violations(&["orders", "store"], grouped),
        ["`orders` uses `crate::metering`, which is above it"]
    );
    let written_out = "fn f() { crate::settlement::close(db); }";
    assert_eq!(
        layering_violations(&["billing", "run"], written_out).len(),
        1
    );
    let in_comment = "// unlike crate::api, this is fine\nuse crate::error::ApiError;\n";
    assert!(layering_violations(&["platform"], in_comment).is_empty());
    assert_eq!(layering_violations(&["newcomer"], "").len(), 1);
}

/// Where a store is named from outside the module that owns it: a capability's `store` (its
/// SQL and its rows) is its own, so another capability reads through the owner's typed front
/// door and never depends on its tables. A `store` module is private to its parent, and no path
/// from elsewhere runs through one.
fn store_trespasses(module: &[&str], code: &str) -> Vec<String> {
    let mut found = Vec::new();
    if paths::declares_visible_mod(code, "store") {
        found.push(format!(
            "`{}` makes its `store` visible outside it",
            module.join("::")
        ));
    }
    for path in paths::crate_paths(module, code) {
        let Some(at) = path.iter().position(|s| s == "store") else {
            continue;
        };
        let owner = &path[..at];
        let inside = owner.len() <= module.len() && owner.iter().zip(module).all(|(a, b)| a == b);
        if !inside {
            let trespass = format!(
                "`{}` reaches into `{}::store`",
                module.join("::"),
                owner.join("::")
            );
            if !found.contains(&trespass) {
                found.push(trespass);
            }
        }
    }
    found
}

#[test]
fn every_store_is_private_to_its_capability() {
    let mut found = Vec::new();
    for (relative, text) in crate_sources() {
        let module = module_path(&relative);
        let module: Vec<&str> = module.iter().map(String::as_str).collect();
        for t in store_trespasses(&module, &text) {
            found.push(format!("{}: {t}", relative.display()));
        }
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn a_path_into_another_capabilitys_store_is_caught() {
    let imported = "use crate::listing;\nfn f() { listing::store::find_product(db, id) }";
    assert_eq!(
        store_trespasses(&["orders"], imported),
        ["`orders` reaches into `listing::store`"]
    );
    let grouped = "use crate::{error::ApiError, listing::{self, store::{find_product}}};";
    assert_eq!(store_trespasses(&["review"], grouped).len(), 1);
    let nested = "use crate::identity::session::store;";
    assert_eq!(store_trespasses(&["identity"], nested).len(), 1);
    assert_eq!(
        store_trespasses(&["listing"], "pub(crate) mod store;"),
        ["`listing` makes its `store` visible outside it"]
    );
    for own in [
        "mod store;\nfn f() { store::find(db) }",
        "use crate::billing::store::{self, CursorMove};",
        "use super::store;\nfn f() { super::store::cursor(db) }",
    ] {
        assert!(
            store_trespasses(&["billing", "run"], own).is_empty(),
            "{own}"
        );
    }
}

/// Whether a file may talk to the database: each capability's `store.rs`, and the storage port
/// with its adapters (the migrations, the Spin and rusqlite connections).
fn may_query(relative: &Path) -> bool {
    relative.file_name().is_some_and(|n| n == "store.rs")
        || relative.starts_with("platform/storage")
        || relative == Path::new("platform/spin.rs")
}

/// Every capability keeps its SQL in its `store.rs`: the rules read as rules, and a newcomer
/// looking for a query finds it in one place per capability.
#[test]
fn sql_lives_in_store_files() {
    let mut strays = Vec::new();
    for (relative, text) in crate_sources() {
        if may_query(&relative) {
            continue;
        }
        if without_tests(&text).contains(".execute(") {
            strays.push(relative.display().to_string());
        }
    }
    assert!(
        strays.is_empty(),
        "queries outside a store.rs: {}",
        strays.join(", ")
    );
}

/// What a file does that could put the network inside a write transaction: call an outbound
/// adapter but through the guard (`platform::outbound::get`, which refuses while this thread
/// holds a transaction), or open a transaction but through `platform::storage::transaction`
/// (which the guard counts).
fn transaction_bypasses(relative: &Path, code: &str) -> Vec<String> {
    let mut found = Vec::new();
    if relative != Path::new("platform/outbound/mod.rs")
        && (code.contains(".get_unguarded(") || code.contains(".post_unguarded("))
    {
        found.push(format!(
            "{}: calls an outbound adapter directly; use platform::outbound::get or post",
            relative.display()
        ));
    }
    let opens = ["BEGIN IMMEDIATE", "\"BEGIN", ".begin()"];
    if !relative.starts_with("platform/storage") && opens.iter().any(|o| code.contains(o)) {
        found.push(format!(
            "{}: opens a transaction directly; use platform::storage::transaction",
            relative.display()
        ));
    }
    found
}

/// Nothing waits on the network while holding the write lock: every outbound request passes the
/// guard, and every transaction is one the guard sees. Together with the guard's own test
/// (`an_outbound_request_inside_a_write_transaction_is_refused_and_outside_it_is_sent`) and the
/// API tests that reach a stand-in Prometheus, a request sent inside a transaction fails the build.
#[test]
fn outbound_calls_go_through_the_guard() {
    let mut found = Vec::new();
    for (relative, text) in crate_sources() {
        found.extend(transaction_bypasses(&relative, without_tests(&text)));
    }
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn a_bypass_of_the_outbound_guard_is_caught() {
    let direct = "let (status, body) = out.get_unguarded(&url)?;";
    assert_eq!(
        transaction_bypasses(Path::new("billing/preview.rs"), direct).len(),
        1
    );
    let posted = "let (status, _) = out.post_unguarded(&url, &headers, &body)?;";
    assert_eq!(
        transaction_bypasses(Path::new("webhook/deliver.rs"), posted).len(),
        1
    );
    assert!(transaction_bypasses(Path::new("platform/outbound/mod.rs"), direct).is_empty());
    let begun = "db.begin()?; let x = outbound::get(out, &url);";
    assert_eq!(
        transaction_bypasses(Path::new("billing/run.rs"), begun).len(),
        1
    );
    assert!(
        transaction_bypasses(Path::new("billing/run.rs"), "transaction(db, |db| f(db))").is_empty()
    );
}

/// Every Rust file of the workspace, tests and benchmarks included: the domain crate, the test
/// kit, the end-to-end tests and the components.
fn workspace_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["shared", "components", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    files
}

/// Every file of the workspace, tests included, stays short enough to read whole: a test file
/// grows by topic, and splits by topic too.
#[test]
fn no_source_file_grows_past_800_lines() {
    let long: Vec<String> = workspace_files()
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

/// A function that needs a long argument list takes a struct of them instead: clippy's limit
/// stays on everywhere (the allowance is spelled in two halves so this file is not a match).
#[test]
fn no_file_lifts_clippys_argument_limit() {
    let allowance = concat!("too_many", "_arguments");
    let allowing: Vec<String> = workspace_files()
        .iter()
        .filter(|path| std::fs::read_to_string(path).is_ok_and(|text| text.contains(allowance)))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        allowing.is_empty(),
        "take a struct instead:\n{}",
        allowing.join("\n")
    );
}

/// The longest a function may grow (signature to closing brace, comments included) before it is
/// split along its steps.
const MAX_FUNCTION_LINES: usize = 80;

/// Whether `line` starts a function: optional visibility, `const`/`async`/`unsafe`, then `fn`.
fn opens_function(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix("pub") {
        rest = match after.strip_prefix('(') {
            Some(scoped) => scoped.split_once(')')?.1,
            None => after,
        }
        .trim_start();
    }
    for qualifier in ["const ", "async ", "unsafe "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let name = rest.strip_prefix("fn ")?;
    name.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .next()
}

/// The functions of `text` longer than [`MAX_FUNCTION_LINES`]: each name with its length. A
/// function ends at the first line after it that closes its indentation (`}` where `fn` began);
/// a declaration without a body (ending in `;` before any `{`) has no length.
fn long_functions(text: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = opens_function(line) else {
            continue;
        };
        let indent = &line[..line.len() - line.trim_start().len()];
        let body = lines[i..]
            .iter()
            .position(|l| l.contains('{') || l.ends_with(';'));
        if body.is_none_or(|b| !lines[i + b].contains('{')) || line.trim_end().ends_with('}') {
            continue;
        }
        let closing = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| l.trim_end() == closing) {
            let length = end + 2;
            if length > MAX_FUNCTION_LINES {
                found.push((name.to_owned(), length));
            }
        }
    }
    found
}

/// A function is read whole: one longer than [`MAX_FUNCTION_LINES`] is split along its steps.
#[test]
fn no_function_grows_past_80_lines() {
    let long: Vec<String> = crate_sources()
        .iter()
        .flat_map(|(relative, text)| {
            long_functions(text)
                .into_iter()
                .map(move |(name, n)| format!("{}: fn {name}, {n} lines", relative.display()))
        })
        .collect();
    assert!(
        long.is_empty(),
        "split these functions:\n{}",
        long.join("\n")
    );
}

#[test]
fn a_long_function_is_caught() {
    let body = |n: usize| "    step();\n".repeat(n);
    let short = format!("pub(crate) fn short() {{\n{}}}\n", body(78));
    assert!(long_functions(&short).is_empty());
    let long = format!(
        "impl X {{\n    pub(super) async fn long(\n        a: u8,\n    ) -> u8 {{\n{}    }}\n}}\n",
        body(77)
    );
    assert_eq!(long_functions(&long), [("long".to_owned(), 81)]);
    let declared = "trait T {\n    fn declared(&self);\n}\nfn one_line() { x() }\n";
    assert!(long_functions(declared).is_empty());
}

/// The Rust sources of the workspace: the domain crate, its tests, the components and the
/// end-to-end tests.
fn workspace_sources() -> String {
    workspace_files()
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("readable source"))
        .collect()
}

/// What a row of `docs/RULES.md` names that the code does not define: in its last two columns,
/// each `path::to::item` must be a definition (`fn item`, `struct item`, …) and each test a
/// `fn`, so the rules cannot keep pointing at code that was renamed or retired.
fn dangling_rule_references(rules: &str, sources: &str) -> Vec<String> {
    let defines = |name: &str| {
        [
            "fn", "struct", "enum", "const", "static", "trait", "type", "mod",
        ]
        .iter()
        .any(|kind| {
            sources
                .match_indices(&format!("{kind} {name}"))
                .any(|(i, m)| {
                    !sources[i + m.len()..]
                        .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                })
        })
    };
    let mut dangling = Vec::new();
    for row in rules.lines().filter(|l| l.starts_with("| R")) {
        let columns: Vec<&str> = row.split(" | ").collect();
        let (Some(rule), [.., code, tests]) = (columns[0].strip_prefix("| "), &columns[..]) else {
            continue;
        };
        let named = code
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|n| n.contains("::"));
        let tests = tests.split('`').skip(1).step_by(2);
        for name in named.chain(tests) {
            let item = name.rsplit("::").next().unwrap_or(name);
            if !defines(item) {
                dangling.push(format!("{rule}: `{name}`"));
            }
        }
    }
    dangling
}

#[test]
fn the_rules_name_only_code_and_tests_that_exist() {
    let rules =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/RULES.md"))
            .expect("docs/RULES.md");
    let dangling = dangling_rule_references(&rules, &workspace_sources());
    assert!(
        dangling.is_empty(),
        "RULES.md names what is not defined:\n{}",
        dangling.join("\n")
    );
}

#[test]
fn a_renamed_test_is_caught() {
    let rules = "| R1.1 | A rule. | `orders::place` | `an_order_is_placed` |\n";
    assert!(
        dangling_rule_references(rules, "fn place() {}\nfn an_order_is_placed() {}").is_empty()
    );
    assert_eq!(
        dangling_rule_references(rules, "fn place() {}\nfn an_order_is_placed_once() {}"),
        ["R1.1: `an_order_is_placed`"]
    );
    assert_eq!(
        dangling_rule_references(rules, "fn placed() {}\nfn an_order_is_placed() {}"),
        ["R1.1: `orders::place`"]
    );
}
