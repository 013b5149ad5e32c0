//! A crashed actor is restarted by its supervisor, the restart is counted on the status board,
//! and the actor keeps handling messages at the same address.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use cav_actors::actor::classifier::ClassifierActor;
use cav_actors::actor::features::FeatureActor;
use cav_actors::health::{ActorState, StatusBoard};
use cav_actors::messages::{Classification, SpanFeaturesMsg, SyncedSpan};
use cav_actors::supervise::{InjectPanic, Ping};
use cav_core::align::AlignedSpan;
use cav_core::{Frame, MonotonicClock, RuleClassifier, Timestamp};

#[derive(Default)]
struct Collector {
    spans: Arc<Mutex<Vec<SpanFeaturesMsg>>>,
}

impl Actor for Collector {
    type Context = Context<Self>;
}

impl Handler<SpanFeaturesMsg> for Collector {
    type Result = ();
    fn handle(&mut self, msg: SpanFeaturesMsg, _: &mut Context<Self>) {
        self.spans.lock().unwrap().push(msg);
    }
}

fn span(second: i64) -> SyncedSpan {
    let frame = Frame::filled(64, 48, [40, 80, 160]).unwrap();
    SyncedSpan(AlignedSpan {
        start: Timestamp(second * 1_000_000),
        end: Timestamp((second + 1) * 1_000_000),
        frames: vec![(Timestamp(second * 1_000_000), frame)],
        audio: Some(vec![0.01; 16_000]),
        audio_missing_samples: 0,
    })
}

async fn wait_until(mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f() {
            return true;
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[actix_rt::test]
async fn a_crashed_feature_actor_is_restarted_and_keeps_working() {
    let board = StatusBoard::new();
    let clock = Arc::new(MonotonicClock::new());
    let spans = Arc::new(Mutex::new(Vec::new()));
    let collector = Collector {
        spans: spans.clone(),
    }
    .start();
    let features = {
        let (board, clock, next) = (board.clone(), clock.clone(), collector.recipient());
        Supervisor::start(move |_| FeatureActor::new(board, clock, 25, next))
    };

    features.send(span(0)).await.unwrap();
    assert_eq!(features.send(Ping).await.unwrap(), 1);
    assert!(wait_until(|| spans.lock().unwrap().len() == 1).await);

    // Crash it.
    features.send(InjectPanic).await.unwrap();
    assert!(
        wait_until(|| board.actors()["features"].restarts == 1).await,
        "{:?}",
        board.actors()
    );
    let status = &board.actors()["features"];
    assert!(status
        .last_error
        .as_deref()
        .unwrap()
        .contains("panic injected into features"));

    // Same address, fresh state, still working.
    features.send(span(1)).await.unwrap();
    assert_eq!(features.send(Ping).await.unwrap(), 1, "state was reset");
    assert!(wait_until(|| spans.lock().unwrap().len() == 2).await);
    assert_eq!(board.actors()["features"].state, ActorState::Running);

    // A second crash is counted too.
    features.send(InjectPanic).await.unwrap();
    assert!(wait_until(|| board.actors()["features"].restarts == 2).await);
    features.send(span(2)).await.unwrap();
    assert!(wait_until(|| spans.lock().unwrap().len() == 3).await);
}

#[derive(Default)]
struct Sink(Arc<Mutex<Vec<Classification>>>);

impl Actor for Sink {
    type Context = Context<Self>;
}

impl Handler<Classification> for Sink {
    type Result = ();
    fn handle(&mut self, msg: Classification, _: &mut Context<Self>) {
        self.0.lock().unwrap().push(msg);
    }
}

#[actix_rt::test]
async fn a_restarted_classifier_starts_a_fresh_window() {
    let board = StatusBoard::new();
    let clock = Arc::new(MonotonicClock::new());
    let out = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(out.clone()).start();
    let classifier = {
        let board = board.clone();
        Supervisor::start(move |_| {
            ClassifierActor::new(
                board,
                clock,
                Duration::from_secs(2),
                "test".into(),
                Arc::new(RuleClassifier),
                cav_core::smooth::SmoothingSettings::default(),
                vec![sink.recipient()],
            )
        })
    };
    let mut extractor = cav_core::features::SpanFeatureExtractor::new(25);
    let feat = |s: i64, ex: &mut cav_core::features::SpanFeatureExtractor| {
        SpanFeaturesMsg(ex.extract(&span(s).0))
    };
    classifier.send(feat(0, &mut extractor)).await.unwrap();
    classifier.send(InjectPanic).await.unwrap();
    assert!(wait_until(|| board.actors()["classifier"].restarts == 1).await);
    // The half-filled window was dropped with the crash: a full new window is needed.
    classifier.send(feat(10, &mut extractor)).await.unwrap();
    assert!(out.lock().unwrap().is_empty());
    classifier.send(feat(11, &mut extractor)).await.unwrap();
    assert!(wait_until(|| out.lock().unwrap().len() == 1).await);
    let c = out.lock().unwrap()[0].clone();
    assert_eq!((c.start().millis(), c.end().millis()), (10_000, 12_000));
    // The classifier does not show the window itself: the store writer does, once it is stored.
    assert!(board.current().is_none());
}

#[actix_rt::test]
async fn a_crashed_file_source_is_restarted_and_plays_again() {
    use cav_actors::actor::file_source::{FileSource, FileSourceSettings, Streams};
    use cav_actors::queue::drop_oldest;

    struct Expect;
    impl Actor for Expect {
        type Context = Context<Self>;
    }
    impl Handler<cav_actors::messages::ExpectStreams> for Expect {
        type Result = ();
        fn handle(&mut self, _: cav_actors::messages::ExpectStreams, _: &mut Context<Self>) {}
    }

    let board = StatusBoard::new();
    let clock = Arc::new(MonotonicClock::new());
    let counters = board.register_source("file", "file", Timestamp(0));
    let (video_tx, video_rx) = drop_oldest(64, counters.frames_dropped.clone());
    let (audio_tx, _audio_rx) = drop_oldest(64, counters.audio_chunks_dropped.clone());
    let settings = FileSourceSettings {
        id: "file".into(),
        path: concat!(env!("CARGO_MANIFEST_DIR"), "/../data/demo/demo.mp4").into(),
        looping: true,
        streams: Streams {
            video: true,
            audio: true,
        },
        analysis_fps: 10.0,
        analysis_width: 160,
    };
    let expect = Expect.start().recipient();
    let source = {
        let (board, counters) = (board.clone(), counters.clone());
        Supervisor::start(move |_| {
            FileSource::new(settings, board, clock, video_tx, audio_tx, expect, counters)
        })
    };
    assert!(
        wait_until(|| video_rx.len() >= 3).await,
        "no frames before the crash"
    );
    source.send(InjectPanic).await.unwrap();
    assert!(wait_until(|| board.actors()["file_source"].restarts == 1).await);
    video_rx.drain();
    // The restarted actor starts a new decoder thread: frames flow again.
    assert!(
        wait_until(|| video_rx.len() >= 3).await,
        "no frames after the restart: {:?}",
        board.sources()["file"]
    );
}

/// An actor whose handler can be made to block its thread, as a wedged stage would.
struct Wedgeable;
impl Actor for Wedgeable {
    type Context = Context<Self>;
}
#[derive(Message)]
#[rtype(result = "()")]
struct Block(Duration);
impl Handler<Block> for Wedgeable {
    type Result = ();
    fn handle(&mut self, msg: Block, _: &mut Context<Self>) {
        std::thread::sleep(msg.0);
    }
}
cav_actors::impl_alive!(Wedgeable);

#[actix_rt::test]
async fn the_liveness_probe_names_a_wedged_stage_and_recovers_with_it() {
    use cav_actors::pipeline::LivenessProbe;
    // Each on its own arbiter (thread), as the pipeline's stages are.
    let healthy = Wedgeable::start_in_arbiter(&Arbiter::new().handle(), |_| Wedgeable);
    let stuck = Wedgeable::start_in_arbiter(&Arbiter::new().handle(), |_| Wedgeable);
    let probe = LivenessProbe::new(vec![
        ("healthy", healthy.clone().recipient()),
        ("stuck", stuck.clone().recipient()),
    ]);
    assert_eq!(probe.check(Duration::from_millis(500)).await, Ok(()));
    stuck.do_send(Block(Duration::from_millis(1500)));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(probe.check(Duration::from_millis(300)).await, Err("stuck"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(probe.check(Duration::from_millis(500)).await, Ok(()));
}
