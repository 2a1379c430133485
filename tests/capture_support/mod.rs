//! The captured device payloads of `tests/fixtures/captures.jsonl`, shared by the fixture tests
//! and the property tests.

#[derive(serde::Deserialize)]
#[allow(dead_code)] // each test crate reads the fields it needs
pub struct Capture {
    pub id: String,
    pub kind: String,
    pub body: String,
    pub http_status: Option<u16>,
}

pub fn captures() -> Vec<Capture> {
    include_str!("../fixtures/captures.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("fixture line"))
        .collect()
}
