//! Numbers, stamps and delivers events to the sink, under the optional events-per-second cap.

use std::time::{Duration, Instant, SystemTime};

use crate::db::{DbOp, DbWriter, META_NEXT_EVENT_ID};
use crate::event::{Event, EventBody};
use crate::sink::{EventSink, SinkError};

/// Event ids are reserved in the database this many at a time, so that no id is handed out
/// twice even when the agent dies before its last batch is committed.
pub(crate) const ID_BLOCK: u64 = 1 << 20;

/// Gives out event ids and sends events to the sink.
pub(crate) struct Emitter {
    sink: Box<dyn EventSink>,
    next_id: u64,
    /// Ids below this value are reserved (sent to the writer, maybe not committed yet).
    reserved_until: u64,
    baseline_id: String,
    boot_id: String,
    limiter: Option<RateLimiter>,
    unflushed: bool,
}

impl Emitter {
    pub fn new(
        sink: Box<dyn EventSink>,
        first_id: u64,
        reserved_until: u64,
        baseline_id: String,
        boot_id: String,
        max_per_sec: Option<u32>,
    ) -> Emitter {
        Emitter {
            sink,
            next_id: first_id,
            reserved_until,
            baseline_id,
            boot_id,
            limiter: max_per_sec.map(RateLimiter::new),
            unflushed: false,
        }
    }

    /// Stamps `body` with the next id and the current time and sends it; returns the event.
    pub fn emit(&mut self, body: EventBody, db: &DbWriter) -> Result<Event, SinkError> {
        if let Some(limiter) = &mut self.limiter {
            limiter.acquire();
        }
        let id = self.take_id(db);
        let event = Event {
            id,
            baseline_id: self.baseline_id.clone(),
            boot_id: self.boot_id.clone(),
            timestamp: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            body,
        };
        self.sink.send(event.clone())?;
        self.unflushed = true;
        Ok(event)
    }

    fn take_id(&mut self, db: &DbWriter) -> u64 {
        if self.next_id + ID_BLOCK / 2 >= self.reserved_until {
            self.reserved_until += ID_BLOCK;
            db.send(DbOp::Meta(
                META_NEXT_EVENT_ID,
                self.reserved_until.to_string(),
            ));
        }
        if self.next_id >= db.committed_id_reservation() {
            // Only reachable after half a block of events within one batch window.
            db.flush();
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub fn flush(&mut self) -> Result<(), SinkError> {
        if self.unflushed {
            self.unflushed = false;
            self.sink.flush()?;
        }
        Ok(())
    }
}

/// A token bucket holding one second of events: bursts up to the rate, then waits.
struct RateLimiter {
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    fn new(per_sec: u32) -> RateLimiter {
        let per_sec = f64::from(per_sec.max(1));
        RateLimiter {
            per_sec,
            tokens: per_sec,
            last: Instant::now(),
        }
    }

    /// Takes one token, sleeping until one is available.
    fn acquire(&mut self) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.per_sec);
        self.last = now;
        if self.tokens < 1.0 {
            let wait = (1.0 - self.tokens) / self.per_sec;
            std::thread::sleep(Duration::from_secs_f64(wait));
            self.tokens = 1.0;
            self.last = Instant::now();
        }
        self.tokens -= 1.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_spreads_events_over_time() {
        let mut limiter = RateLimiter::new(100);
        let start = Instant::now();
        for _ in 0..150 {
            limiter.acquire();
        }
        // 100 from the full bucket, then 50 at 100 per second.
        assert!(start.elapsed() >= Duration::from_millis(400));
    }
}
