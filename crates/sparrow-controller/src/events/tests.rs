use std::sync::Mutex as StdMutex;

use super::*;

fn foreign(namespace: &str, pod: &str) -> Occurrence {
    Occurrence {
        regarding: ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Secret".to_owned()),
            name: Some("sparrow-registry-key".to_owned()),
            namespace: Some(namespace.to_owned()),
            ..ObjectReference::default()
        },
        type_: "Warning",
        reason: "ForeignPullSecret".to_owned(),
        action: "CopyPullSecret".to_owned(),
        note: format!("pod {pod} uses it"),
    }
}

/// A sink that records each write with its time, answering with `answer`.
struct Record {
    writes: StdMutex<Vec<(Instant, EventWrite)>>,
    answer: fn(usize) -> Result<(), EventWriteError>,
}

impl Record {
    fn new(answer: fn(usize) -> Result<(), EventWriteError>) -> Arc<Self> {
        Arc::new(Self {
            writes: StdMutex::new(Vec::new()),
            answer,
        })
    }

    fn writes(&self) -> Vec<(Instant, EventWrite)> {
        self.writes.lock().expect("lock").clone()
    }
}

impl EventSink for Arc<Record> {
    fn write<'a>(&'a self, write: &'a EventWrite) -> BoxFuture<'a, Result<(), EventWriteError>> {
        let mut writes = self.writes.lock().expect("lock");
        writes.push((Instant::now(), write.clone()));
        let answer = (self.answer)(writes.len());
        Box::pin(async move { answer })
    }
}

fn start(sink: Arc<Record>) -> EventRecorder {
    let recorder = EventRecorder::new(EventMetrics::default());
    let worker = recorder.clone();
    tokio::spawn(async move { worker.run(sink).await });
    recorder
}

#[tokio::test(start_paused = true)]
async fn a_burst_in_one_namespace_is_one_event_and_one_series_update() {
    let sink = Record::new(|_| Ok(()));
    let recorder = start(sink.clone());
    let started = Instant::now();
    // 2,000 forged reviews in 6.5 s, as in the issue.
    for n in 0..2000u32 {
        recorder.record(foreign("shop", &format!("forged-{n}")));
        tokio::time::sleep(Duration::from_micros(3250)).await;
    }
    tokio::time::sleep(Duration::from_secs(300)).await;

    let writes = sink.writes();
    assert_eq!(writes.len(), 2, "{writes:#?}");
    let EventWrite::Create { event, occurrences } = &writes[0].1 else {
        panic!("the first write creates the Event: {:?}", writes[0]);
    };
    assert_eq!(*occurrences, 1);
    assert!(writes[0].0 - started < Duration::from_millis(10), "at once");
    assert_eq!(event.reason.as_deref(), Some("ForeignPullSecret"));
    assert_eq!(event.note.as_deref(), Some("pod forged-0 uses it"));
    assert_eq!(event.metadata.namespace.as_deref(), Some("shop"));
    assert_eq!(
        writes[1].1,
        EventWrite::Series {
            namespace: "shop".to_owned(),
            name: event.metadata.name.clone().expect("named"),
            count: 2000,
            occurrences: 1999,
        }
    );
    assert_eq!(writes[1].0 - writes[0].0, AGGREGATION_WINDOW);
    assert_eq!(recorder.metrics().writes(), 2);
    assert_eq!(recorder.metrics().dropped("queue-full"), 0);
}

#[tokio::test(start_paused = true)]
async fn steady_occurrences_cost_one_write_per_window() {
    let sink = Record::new(|_| Ok(()));
    let recorder = start(sink.clone());
    // One occurrence a second for five minutes.
    for n in 0..300u32 {
        if n > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        recorder.record(foreign("shop", &format!("p-{n}")));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let writes = sink.writes();
    // At 0, 60, 120, 180, 240 and 300 s.
    assert_eq!(writes.len(), 6, "{writes:#?}");
    for pair in writes.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= AGGREGATION_WINDOW);
    }
}

#[tokio::test(start_paused = true)]
async fn new_series_beyond_the_bound_are_dropped_and_counted() {
    // The API server never answers in time: nothing leaves the book.
    let sink = Record::new(|_| Err(EventWriteError::Overloaded("timeout".to_owned())));
    let recorder = start(sink.clone());
    for n in 0..MAX_KEYS + 10 {
        recorder.record(foreign(&format!("ns-{n}"), "p"));
    }
    assert_eq!(recorder.metrics().dropped("queue-full"), 10);
    // More occurrences of a tracked series are counted in, not dropped.
    recorder.record(foreign("ns-5", "again"));
    assert_eq!(recorder.metrics().dropped("queue-full"), 10);
}

#[tokio::test(start_paused = true)]
async fn back_pressure_slows_the_writer_and_nothing_is_retried() {
    // Every write is refused with 429.
    let sink = Record::new(|_| {
        Err(EventWriteError::Overloaded(
            "429 TooManyRequests".to_owned(),
        ))
    });
    let recorder = start(sink.clone());
    for n in 0..200 {
        recorder.record(foreign(&format!("ns-{n}"), "p"));
    }
    tokio::time::sleep(Duration::from_secs(300)).await;
    let writes = sink.writes();
    // Pauses of 1, 2, 4, ..., 60 s: 10 writes in five minutes, not 200 (or 200 times retries).
    assert_eq!(writes.len(), 10, "{writes:#?}");
    let namespaces: std::collections::BTreeSet<_> = writes
        .iter()
        .map(|(_, w)| match w {
            EventWrite::Create { event, .. } => event.metadata.namespace.clone(),
            EventWrite::Series { namespace, .. } => Some(namespace.clone()),
        })
        .collect();
    assert_eq!(namespaces.len(), 10, "a refused write is not tried again");
    assert_eq!(recorder.metrics().dropped("write-failed"), 10);
}

#[tokio::test(start_paused = true)]
async fn writes_are_spaced_and_recovery_resets_the_pause() {
    // The first two writes are refused, then the API server recovers.
    let sink = Record::new(|n| {
        if n <= 2 {
            Err(EventWriteError::Overloaded("429".to_owned()))
        } else {
            Ok(())
        }
    });
    let recorder = start(sink.clone());
    for n in 0..20 {
        recorder.record(foreign(&format!("ns-{n}"), "p"));
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let writes = sink.writes();
    assert_eq!(writes.len(), 20, "{writes:#?}");
    assert_eq!(writes[1].0 - writes[0].0, FIRST_PAUSE);
    assert_eq!(writes[2].0 - writes[1].0, FIRST_PAUSE * 2);
    for pair in writes[2..].windows(2) {
        assert_eq!(pair[1].0 - pair[0].0, MIN_WRITE_INTERVAL);
    }
}

#[test]
fn a_series_older_than_its_ttl_starts_a_new_event() {
    let mut book = EventBook::default();
    let t0 = Instant::now();
    assert_eq!(book.offer(foreign("shop", "a"), t0), Offered::Queued);
    let first = book.take_due(t0).expect("due at once");
    assert!(matches!(first, EventWrite::Create { .. }));
    book.done(&first, true, t0);
    assert_eq!(book.offer(foreign("shop", "b"), t0), Offered::Aggregated);
    assert_eq!(book.take_due(t0), None, "aggregated until the window ends");
    let at = t0 + AGGREGATION_WINDOW;
    let second = book.take_due(at).expect("due after the window");
    assert!(
        matches!(second, EventWrite::Series { count: 2, .. }),
        "{second:?}"
    );
    book.done(&second, true, at);
    assert_eq!(book.next_due(), None);

    let later = at + SERIES_TTL;
    assert_eq!(book.offer(foreign("shop", "c"), later), Offered::Queued);
    let third = book.take_due(later).expect("due");
    let EventWrite::Create { event, .. } = third else {
        panic!("a new Event after the TTL: {third:?}");
    };
    assert_eq!(event.note.as_deref(), Some("pod c uses it"));
    assert_eq!(book.len(), 1);
}
