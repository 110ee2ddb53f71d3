//! `sparrowctl inject`'s path: YAML documents in, YAML out. Whatever the text, injection never
//! panics; what it writes is YAML that parses, and injecting that output again changes nothing
//! (every workload it injected already carries the sidecar).

#![no_main]

use libfuzzer_sys::fuzz_target;
use sparrow_inject::{InjectConfig, inject_documents};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Deeply nested or aliased input is refused by the parser's budget, not by a crash.
    if text.len() > 64 * 1024 {
        return;
    }
    let config = InjectConfig::default();
    let Ok(once) = inject_documents(text, &config) else {
        return;
    };
    let _: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&once).expect("injected output is YAML");
    let twice = inject_documents(&once, &config).expect("injected output injects again");
    assert_eq!(once, twice, "injection is idempotent");
});
