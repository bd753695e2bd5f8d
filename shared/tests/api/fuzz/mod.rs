//! The fuzzing harness: `openapi.yaml` holds the code to its word. For every operation of the
//! contract, proptest generates requests — valid, at the bounds and garbage: bodies from the
//! operation's schemas, paths with real, other tenants', missing and garbage ids, documented and
//! unknown query parameters, every caller, documented headers — and sends them to the handlers
//! over a world built through the API. Every response must be no 5xx and exactly as documented
//! (`oracle`). One test per tag of the contract, each on a world of its own; `FUZZ_CASES` sets
//! the cases per operation, `FUZZ_SEED` the seed.

mod contract;
mod coverage;
mod oracle;
mod requests;
mod values;
mod world;

use std::collections::BTreeMap;

use proptest::test_runner::{
    Config, FileFailurePersistence, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner,
};

use contract::Contract;
use world::World;

/// Cases per operation when `FUZZ_CASES` is not set: the whole run stays well under a minute
/// in a debug build on two cores.
const DEFAULT_CASES: u32 = 256;
/// The seed when `FUZZ_SEED` is not set: every run sends the same requests, so a failure is
/// reproduced by running again.
const DEFAULT_SEED: u64 = 12;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
    })
}

fn runner(cases: u32) -> TestRunner {
    let seed = env_number("FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        // Each shrinking step is a request against the world; a finding's minimal form is
        // found well within this.
        max_shrink_iters: 512,
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::SourceParallel(
            "proptest-regressions",
        ))),
        ..Config::default()
    };
    TestRunner::new_with_rng(
        config,
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    )
}

/// Fuzzes every operation of `tag` against a world of its own, then every operation of the
/// contract briefly in the world those requests left behind (an instance stopped an hour before
/// it was ordered, a review decided twice, a token rotated), so that what one operation writes
/// meets what the others read. Fails listing each operation whose responses broke the
/// contract, with its minimal request.
fn fuzz(tag: &str) {
    let contract = Contract::get();
    let world = World::build();
    let cases =
        env_number("FUZZ_CASES").map_or(DEFAULT_CASES, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let own = contract.operations.iter().filter(|o| o.tag == tag);
    let aftermath = contract.operations.iter().filter(|o| o.tag != tag);
    let mut failures = Vec::new();
    let mut seen = String::new();
    let rounds = own
        .map(|op| (op, cases))
        .chain(aftermath.map(|op| (op, (cases / 32).max(1))));
    for (op, cases) in rounds {
        let started = std::time::Instant::now();
        let statuses = std::cell::RefCell::new(BTreeMap::<u16, u32>::new());
        let strategy = requests::cases(contract, op, &world);
        let outcome = runner(cases).run(&strategy, |case| {
            let response = world.send(&case);
            *statuses.borrow_mut().entry(response.status).or_default() += 1;
            if op.id == "rotateToken" && response.status == 201 {
                world.rotated(&response.json());
            }
            oracle::check(contract, &case.request(), &response).map_err(|violation| {
                let body: String = response.text().chars().take(600).collect();
                TestCaseError::fail(format!(
                    "{violation}\n    answered {} {body}",
                    response.status
                ))
            })
        });
        if op.id == "disablePrincipal" {
            world.enable_all();
        }
        seen.push_str(&format!(
            "{:>28}: {:?} {:?}\n",
            op.id,
            statuses.borrow(),
            started.elapsed()
        ));
        match outcome {
            Ok(()) => {}
            Err(TestError::Fail(why, case)) => {
                failures.push(format!(
                    "{} {} ({}): {why}\n    request: {case:?}",
                    op.method, op.template, op.id
                ));
            }
            Err(TestError::Abort(why)) => failures.push(format!("{}: aborted: {why}", op.id)),
        }
    }
    eprintln!("statuses answered, by operation:\n{seen}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// One test per tag of `openapi.yaml`; `FUZZED_TAGS` lists them, so an operation under a new
/// tag has no generator until it is added here (`every_operation_has_a_generator`).
macro_rules! fuzz_tags {
    ($($tag:ident),* $(,)?) => {
        pub(crate) const FUZZED_TAGS: &[&str] = &[$(stringify!($tag)),*];
        mod by_tag {
            $(
                #[test]
                fn $tag() {
                    super::fuzz(stringify!($tag));
                }
            )*
        }
    };
}

fuzz_tags!(
    identity,
    services,
    products,
    media,
    sales,
    catalog,
    reviews,
    orders,
    instances,
    accounts,
    metering,
    billing,
    settlements,
    webhooks,
);
