//! What the sandbox counts, served at `GET /stats`, so that tests and the
//! chaos soak judge the client by the server's books, not the client's:
//! answers by result code, requests in each second, the most requests in
//! flight at once, requests per request ID, and request IDs that arrived
//! with more than one distinct body (must stay 0 for our client).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

#[derive(Debug)]
pub struct Stats {
    started: Instant,
    by_code: BTreeMap<String, u64>,
    per_second: Vec<u64>,
    max_in_flight: usize,
    per_request_id: HashMap<String, IdStats>,
}

#[derive(Debug, Default)]
struct IdStats {
    requests: u32,
    first_body: Option<u64>,
    distinct_bodies: u32,
}

/// The JSON of `GET /stats`.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StatsReport {
    pub requests: u64,
    pub by_code: BTreeMap<String, u64>,
    /// Declare requests that arrived in each second since the start.
    pub per_second: Vec<u64>,
    pub max_per_second: u64,
    pub max_in_flight: usize,
    pub request_ids: usize,
    pub request_ids_with_distinct_bodies: usize,
    /// Requests per request ID.
    pub requests_per_id: BTreeMap<String, u32>,
}

impl Stats {
    pub fn new(started: Instant) -> Stats {
        Stats {
            started,
            by_code: BTreeMap::new(),
            per_second: Vec::new(),
            max_in_flight: 0,
            per_request_id: HashMap::new(),
        }
    }

    /// Counts an arriving declare request; returns how many requests with
    /// this ID came before it (its attempt number, from 0).
    pub fn arrived(&mut self, now: Instant, request_id: Option<&str>, body: &[u8]) -> u32 {
        let second = now.saturating_duration_since(self.started).as_secs() as usize;
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
        let Some(request_id) = request_id else {
            return 0;
        };
        let entry = self
            .per_request_id
            .entry(request_id.to_owned())
            .or_default();
        let body_hash = xxh3_64(body);
        match entry.first_body {
            None => {
                entry.first_body = Some(body_hash);
                entry.distinct_bodies = 1;
            }
            Some(first) if first != body_hash && entry.distinct_bodies == 1 => {
                entry.distinct_bodies = 2;
            }
            Some(_) => {}
        }
        entry.requests += 1;
        entry.requests - 1
    }

    /// Counts the answer given (a result code, or `HTTP_500`, `DROPPED`).
    pub fn answered(&mut self, code: &str) {
        *self.by_code.entry(code.to_owned()).or_default() += 1;
    }

    pub fn in_flight(&mut self, now_in_flight: usize) {
        self.max_in_flight = self.max_in_flight.max(now_in_flight);
    }

    /// Requests counted in the current second.
    pub fn this_second(&self, now: Instant) -> u64 {
        let second = now.saturating_duration_since(self.started).as_secs() as usize;
        self.per_second.get(second).copied().unwrap_or(0)
    }

    pub fn report(&self) -> StatsReport {
        StatsReport {
            requests: self.by_code.values().sum(),
            by_code: self.by_code.clone(),
            per_second: self.per_second.clone(),
            max_per_second: self.per_second.iter().copied().max().unwrap_or(0),
            max_in_flight: self.max_in_flight,
            request_ids: self.per_request_id.len(),
            request_ids_with_distinct_bodies: self
                .per_request_id
                .values()
                .filter(|id| id.distinct_bodies > 1)
                .count(),
            requests_per_id: self
                .per_request_id
                .iter()
                .map(|(id, stats)| (id.clone(), stats.requests))
                .collect(),
        }
    }
}
