//! End-to-end tests: the app as `spin build` builds it and `spin up` runs it (the cron trigger
//! plugin included), over HTTP only. One test binary, so that the tests which can share one
//! `spin up` do; the others start processes of their own.

mod arrears;
mod books;
mod catch_up;
mod collection;
mod concurrency;
mod console;
mod console_publication;
mod crash;
mod cron;
mod deploy;
mod exports;
mod full_path;
mod grants;
mod harness;
mod hosts;
mod media;
mod prometheus;
mod routes;
mod settlement;
mod slow_prometheus;
mod walkthrough;
mod webhooks;
mod wire;
