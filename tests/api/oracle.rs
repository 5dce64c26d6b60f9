//! Inbound verification against code no one here wrote: `scripts/inbound_oracle.py` signs
//! requests with the providers' own SDKs (Standard Webhooks, Slack, Twilio, Stripe), whose
//! verifiers also judge each request; the gateway must store the signed ones and refuse the
//! tampered ones. Needs the Python tools `scripts/test.sh` installs (`NEXUS_TEST_PYTHON`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use tokio::process::Command;

use crate::helpers::{
    behaviour, run_oracle, spawn_app_with, test_python, unique, Backend, Options,
};

behaviour!(provider_sdks_signatures_are_accepted_and_tampered_bodies_refused);

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/inbound_oracle.py");

/// The verifier config per agent suffix: the same fixed secrets as the script's.
fn verifier_configs() -> [(&'static str, Value); 4] {
    [
        (
            "sw",
            json!({"scheme": "standard-webhooks", "secrets": [
                "whsec_bmV4dXMtb3JhY2xlLXJldGlyZWQta2V5",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            ]}),
        ),
        (
            "slack",
            json!({"scheme": "slack", "secret": "8f742231b10e8888abcd99yyyzzz85a5"}),
        ),
        (
            "twilio",
            json!({"scheme": "twilio", "secret": "nexus-oracle-twilio-auth-token"}),
        ),
        (
            "stripe",
            json!({"scheme": "stripe", "secret": "whsec_nexus_oracle_stripe_endpoint_secret"}),
        ),
    ]
}

async fn provider_sdks_signatures_are_accepted_and_tampered_bodies_refused(backend: Backend) {
    let Some(python) = test_python("the Python oracle") else {
        return;
    };
    let prefix = unique("oracle").replace('-', "_");
    let mut options = Options::default();
    for (suffix, config) in verifier_configs() {
        let name = format!("WEBHOOK_SECRET_{prefix}_{suffix}");
        options = options.secret(name, config.to_string());
    }
    let app = spawn_app_with(backend, options).await;
    let out_dir = tempfile::tempdir().expect("temp dir");
    let accepted_path = out_dir.path().join("accepted.json");

    let mut command = Command::new(&python);
    command
        .arg(SCRIPT)
        .args(["--base", &app.base, "--agent-prefix", &prefix, "--accepted"])
        .arg(&accepted_path);
    let report = run_oracle(command).await;

    // Exactly the accepted requests were stored, payloads intact.
    let accepted: Vec<Value> = serde_json::from_slice(
        &std::fs::read(&accepted_path).expect("reading the accepted requests"),
    )
    .expect("accepted requests as JSON");
    let mut by_agent: BTreeMap<&str, BTreeMap<&str, &Value>> = BTreeMap::new();
    for request in &accepted {
        let agent = request["agent"].as_str().expect("an agent");
        let id = request["id"].as_str().expect("an item id");
        by_agent.entry(agent).or_default().insert(id, request);
    }
    let agents: BTreeSet<String> = verifier_configs()
        .iter()
        .map(|(suffix, _)| format!("{prefix}_{suffix}"))
        .collect();
    assert_eq!(
        by_agent
            .keys()
            .map(|a| a.to_string())
            .collect::<BTreeSet<_>>(),
        agents,
        "every scheme has an accepted request\n{report}"
    );
    for (agent, requests) in &by_agent {
        let stored = app.pending_items(agent).await;
        let stored_ids: BTreeSet<&str> = stored.iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(
            stored.len(),
            requests.len(),
            "{agent}: {stored:#?}\n{report}"
        );
        assert_eq!(
            stored_ids,
            requests.keys().copied().collect(),
            "{agent}\n{report}"
        );
        let raw_page = app.pending_text(&format!("agent={agent}&limit=100")).await;
        for item in &stored {
            let request = requests[item["id"].as_str().unwrap()];
            let body = request["body"].as_str().unwrap();
            assert_eq!(item["source"], request["source"], "{item}");
            assert_eq!(item["content_type"], request["content_type"], "{item}");
            match item["payload_encoding"].as_str() {
                Some("json") => {
                    let sent: Value = serde_json::from_str(body).unwrap();
                    assert_eq!(item["payload"], sent, "{item}");
                    assert!(
                        raw_page.contains(body),
                        "JSON not byte for byte: {raw_page}"
                    );
                }
                Some("text") => assert_eq!(item["payload"], body, "{item}"),
                other => panic!("unexpected payload encoding {other:?}: {item}"),
            }
            for (name, value) in item["headers"].as_object().unwrap() {
                if name.contains("signature") {
                    assert_eq!(value, "[redacted]", "{name} in {item}");
                }
            }
        }
    }
}
