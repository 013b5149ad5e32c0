//! experiment (temporary)
mod common;
use cav_actors::obs::{MediaAction, ObsClient, ObsSettings};
use common::{free_port, repo};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
#[ignore]
fn experiment() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let out = Command::new("bash")
        .arg(repo().join("scripts/obs-harness.sh"))
        .arg("start")
        .arg(dir.path())
        .arg("/tmp/oa/intra.mp4")
        .arg(port.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = actix_rt::Runtime::new().unwrap();
    rt.block_on(async {
        let s = ObsSettings {
            host: "127.0.0.1".into(),
            port,
            password: None,
            source: "Media".into(),
            fps: 5.0,
            width: 480,
            jpeg_quality: 90,
        };
        let c = ObsClient::connect(&s).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.media_action("Media", MediaAction::Pause).await.unwrap();
        let mut prev = c.screenshot_jpeg("Media", 480, 95).await.unwrap();
        let mut dec =
            cav_actors::media::VideoDecoder::open(std::path::Path::new("/tmp/oa/intra.mp4"), None)
                .unwrap();
        let mut all = Vec::new();
        while let Some(f) = dec.next_frame().unwrap() {
            all.push(f);
        }
        let mad = |a: &cav_core::Frame, b: &cav_core::Frame| -> f64 {
            a.bgr()
                .iter()
                .zip(b.bgr())
                .map(|(x, y)| (*x as i32 - *y as i32).abs() as f64)
                .sum::<f64>()
                / a.bgr().len() as f64
        };
        let best = |f: &cav_core::Frame| -> String {
            let mut v: Vec<(f64, f64)> = all.iter().map(|g| (mad(f, &g.frame), g.pts_s)).collect();
            v.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
            format!("{:.3}@{:.2} {:.3}@{:.2}", v[0].1, v[0].0, v[1].1, v[1].0)
        };
        for target in [
            5000i64, 5200, 5400, 5600, 20000, 20200, 33000, 33200, 1000, 1200, 1400,
        ] {
            let t0 = Instant::now();
            let before = c.media_status("Media").await.unwrap();
            c.media_action(
                "Media",
                MediaAction::Seek {
                    position_ms: target + 33,
                },
            )
            .await
            .unwrap();
            let t_seek = t0.elapsed();
            let mut log = Vec::new();
            for _ in 0..30 {
                let st = c.media_status("Media").await.unwrap();
                let shot = c.screenshot_jpeg("Media", 480, 95).await.unwrap();
                let fr = cav_actors::obs::decode_jpeg(&shot).unwrap();
                log.push(format!(
                    "{:?} cur={:?} same_as_prev={} len={} best={}",
                    t0.elapsed().as_millis(),
                    st.cursor_ms,
                    shot == prev,
                    shot.len(),
                    best(&fr)
                ));

                if log.len() > 15 {
                    prev = shot;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            println!(
                "target {target} before={:?} seek_took={:?}\n  {}",
                before.cursor_ms,
                t_seek,
                log.join("\n  ")
            );
        }
    });
    let _ = Command::new("bash")
        .arg(repo().join("scripts/obs-harness.sh"))
        .arg("stop")
        .arg(dir.path())
        .output();
}
