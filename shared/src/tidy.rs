//! Architecture invariants, checked by reading the crate's own source (rust-analyzer's `tidy.rs`
//! is the model): what `docs/ARCHITECTURE.md` promises about the layout is held by a test, not by
//! review.

use std::path::{Path, PathBuf};

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
    // Billing periods, the calendar every capability from listing to billing cuts time by.
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

/// The longest a source file may grow before it is split (comments and tests included).
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

/// The top-level module a file belongs to: `src/billing/run.rs` → `billing`, `src/error.rs` →
/// `error`.
fn module_of(relative: &Path) -> String {
    let first = relative
        .components()
        .next()
        .expect("a path below src/")
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The code of a file without its unit tests (`#[cfg(test)] mod tests`, always last): tests may
/// reach across layers to set up a case.
fn without_tests(text: &str) -> &str {
    text.find("\n#[cfg(test)]\nmod tests")
        .map_or(text, |cut| &text[..cut])
}

/// Every `crate::<module>` a file names outside comments.
fn crate_references(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or_default();
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() && !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The violations of the layering by one file of module `module` with this code.
fn layering_violations(module: &str, code: &str) -> Vec<String> {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let Some(own) = rank(module) else {
        return vec![format!(
            "`{module}` is not in tidy::LAYERS: place it in a layer"
        )];
    };
    crate_references(code)
        .into_iter()
        .filter(|used| used != module)
        .filter_map(|used| match rank(&used) {
            Some(r) if r < own => None,
            Some(_) => Some(format!(
                "`{module}` uses `crate::{used}`, which is above it"
            )),
            None => Some(format!(
                "`{module}` uses `crate::{used}`, which is in no layer"
            )),
        })
        .collect()
}

#[test]
fn dependencies_point_down_the_layers() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut violations = Vec::new();
    for path in files {
        let relative = path.strip_prefix(src_dir()).expect("below src/");
        if relative == Path::new("lib.rs") || relative == Path::new("tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        for v in layering_violations(&module_of(relative), without_tests(&text)) {
            violations.push(format!("{}: {v}", relative.display()));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn an_import_against_the_direction_is_caught() {
    let upward = "use crate::platform::storage::Database;\nuse crate::billing::Bill;\n";
    assert_eq!(
        layering_violations("orders", upward),
        ["`orders` uses `crate::billing`, which is above it"]
    );
    assert!(layering_violations("billing", upward).is_empty());
    let in_comment = "// unlike crate::api, this is fine\nuse crate::error::ApiError;\n";
    assert!(layering_violations("platform", in_comment).is_empty());
    assert_eq!(layering_violations("newcomer", "").len(), 1);
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
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut strays = Vec::new();
    for path in files {
        let relative = path.strip_prefix(src_dir()).expect("below src/");
        if may_query(relative) || relative == Path::new("tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
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
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let mut found = Vec::new();
    for path in files {
        let relative = path.strip_prefix(src_dir()).expect("below src/");
        if relative == Path::new("tidy.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable source");
        found.extend(transaction_bypasses(relative, without_tests(&text)));
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

#[test]
fn no_source_file_grows_past_800_lines() {
    let mut files = Vec::new();
    rust_files(&src_dir(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let lines = std::fs::read_to_string(path).ok()?.lines().count();
            (lines > MAX_LINES).then(|| format!("{}: {lines} lines", path.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

/// The Rust sources of the workspace: the domain crate, its tests, the components and the
/// end-to-end tests.
fn workspace_sources() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["shared", "components", "tests"] {
        rust_files(&root.join(dir), &mut files);
    }
    files
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
