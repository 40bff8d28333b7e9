//! The loader thread: loads runs off the caller's thread, and turns a panic
//! while loading into an error for the status line instead of a dead thread.

use std::time::Duration;

use crate::common::fixture;
use rfm_dashboard::app::{App, Command, Loaded, Role};
use rfm_dashboard::data::{DataError, RunData, RunEntry};
use rfm_dashboard::loader::Loader;
use rfm_dashboard::source::{self, Listing, Source, SourceSpec};

#[test]
fn loads_in_the_background() {
    let fx = fixture();
    let src = source::open(&SourceSpec::Results(fx.root.clone())).unwrap();
    let loader = Loader::spawn(src);
    let mut app = App::new("test".into(), false);
    for c in app.start() {
        loader.send(c);
    }
    // The app stays usable while the loader works; results arrive as messages.
    let mut pending = 1;
    while pending > 0 {
        let loaded = loader
            .wait(Duration::from_secs(30))
            .expect("loader answered");
        pending -= 1;
        let more = app.apply(loaded);
        pending += more.len();
        for c in more {
            loader.send(c);
        }
    }
    assert_eq!(app.runs.len(), 2);
    assert_eq!(app.current.as_ref().unwrap().customers.len(), 4_338);
    assert_eq!(app.baseline.as_ref().unwrap().entry.label, "2011-08");
    assert!(app.loading.is_empty());
}

struct Broken;

impl Source for Broken {
    fn describe(&self) -> String {
        "broken".into()
    }
    fn list_runs(&self) -> Result<Listing, DataError> {
        panic!("list exploded");
    }
    fn load_run(&self, _: &RunEntry) -> Result<RunData, DataError> {
        panic!("load exploded");
    }
}

#[test]
fn a_panic_while_loading_becomes_an_error() {
    let fx = fixture();
    let entry = source::open(&SourceSpec::Results(fx.full.clone()))
        .unwrap()
        .list_runs()
        .unwrap()
        .runs
        .remove(0);
    let loader = Loader::spawn(Box::new(Broken));
    loader.send(Command::ListRuns);
    match loader.wait(Duration::from_secs(10)) {
        Some(Loaded::Runs(Err(e))) => assert!(
            e.contains("internal error") && e.contains("list exploded"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    // The thread survives and answers the next command.
    loader.send(Command::LoadRun {
        entry: Box::new(entry.clone()),
        role: Role::Current,
    });
    match loader.wait(Duration::from_secs(10)) {
        Some(Loaded::Run {
            result: Err(e),
            key,
            ..
        }) => {
            assert!(e.contains("load exploded"), "{e}");
            assert_eq!(key, entry.key);
        }
        other => panic!("{other:?}"),
    }
}
