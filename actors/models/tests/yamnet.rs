//! YAMNet against the reference test vectors in `tests/data/yamnet/` (see its README).

mod common;

use std::sync::OnceLock;

use cav_models::yamnet::{
    DepthwiseImpl, LogMelFrontend, Patch, Yamnet, NUM_CONVS, NUM_MELS, PATCH_HOP_SAMPLES,
    PATCH_LEN, PATCH_WINDOW_SAMPLES,
};
use cav_models::ModelError;
use common::{data_dir, load_model, max_abs_diff, models_dir, read_f32, read_wav, CLIPS};

fn model() -> &'static Yamnet {
    static MODEL: OnceLock<Yamnet> = OnceLock::new();
    MODEL.get_or_init(load_model)
}

/// The reference log-mel patches of a clip.
fn reference_patches(clip: &str) -> Vec<Patch> {
    read_f32(&format!("{clip}.logmel.f32"))
        .chunks_exact(PATCH_LEN)
        .map(|p| Patch::from_vec(p.to_vec()).unwrap())
        .collect()
}

#[test]
fn window_and_mel_matrix_match_reference() {
    let fe = LogMelFrontend::new();
    let hann = read_f32("frontend/hann_window.f32");
    let d_hann = max_abs_diff(fe.window(), &hann);
    let mel = read_f32("frontend/mel_weights.f32");
    let ours: Vec<f32> = fe.mel_matrix().iter().flatten().copied().collect();
    let d_mel = max_abs_diff(&ours, &mel);
    println!("hann max diff {d_hann:e}, mel matrix max diff {d_mel:e}");
    assert!(d_hann <= 1e-6, "hann {d_hann}");
    assert!(d_mel <= 1e-6, "mel {d_mel}");
}

#[test]
fn speech_frame0_and_full_log_mel_match_reference() {
    let mut fe = LogMelFrontend::new();
    let wave = read_wav("speech.wav");
    let mag = fe.magnitude_spectrum(&wave, 0);
    let ref_mag = read_f32("frontend/speech.frame0.magnitude.f32");
    let d_mag = max_abs_diff(&mag, &ref_mag);
    let mel: Vec<f32> = (0..NUM_MELS)
        .map(|j| {
            mag.iter()
                .zip(fe.mel_matrix())
                .map(|(m, row)| m * row[j])
                .sum()
        })
        .collect();
    let d_mel = max_abs_diff(&mel, &read_f32("frontend/speech.frame0.mel.f32"));
    let full: Vec<f32> = fe.log_mel(&wave).into_iter().flatten().collect();
    let d_full = max_abs_diff(&full, &read_f32("frontend/speech.logmel_full.f32"));
    println!("speech frame 0: magnitude {d_mag:e}, mel {d_mel:e}; full log-mel {d_full:e}");
    assert!(d_mag <= 1e-4, "magnitude {d_mag}");
    assert!(d_mel <= 1e-4, "mel {d_mel}");
    assert!(d_full <= 2e-3, "log-mel {d_full}");
}

#[test]
fn log_mel_patches_of_all_clips_match_reference() {
    let mut fe = LogMelFrontend::new();
    for (clip, count) in CLIPS {
        let patches = fe.patches(&read_wav(&format!("{clip}.wav")));
        let reference = reference_patches(clip);
        assert_eq!(patches.len(), count, "{clip}");
        assert_eq!(reference.len(), count, "{clip}");
        let d = patches
            .iter()
            .zip(&reference)
            .map(|(a, b)| max_abs_diff(a.as_slice(), b.as_slice()))
            .fold(0.0, f32::max);
        println!("{clip}: log-mel max diff {d:e}");
        assert!(d <= 2e-3, "{clip}: log-mel differs by {d}");
    }
}

#[test]
fn patch_for_window_equals_patch_i() {
    let mut fe = LogMelFrontend::new();
    for (clip, _) in CLIPS {
        let wave = read_wav(&format!("{clip}.wav"));
        let patches = fe.patches(&wave);
        for (i, patch) in patches.iter().enumerate() {
            let start = PATCH_HOP_SAMPLES * i;
            // The last windows reach into the TF padding: a short slice is zero-padded.
            let end = (start + PATCH_WINDOW_SAMPLES).min(wave.len());
            let window = fe.patch_for_window(&wave[start.min(end)..end]);
            assert_eq!(&window, patch, "{clip} patch {i}");
        }
    }
}

#[test]
fn speech_patch0_checkpoints_match_reference() {
    let patch = &reference_patches("speech")[0];
    let mut groups = load_model();
    groups.set_depthwise_impl(DepthwiseImpl::CandleGroups);
    for (name, net) in [("direct", model()), ("candle groups", &groups)] {
        let layers = net.layer_outputs(patch).unwrap();
        assert_eq!(layers.len(), NUM_CONVS);
        let mut worst = 0.0f32;
        for (i, layer) in layers.iter().enumerate() {
            let reference = read_f32(&format!("checkpoints/speech.p0.conv{i:02}.f32"));
            let d = max_abs_diff(layer, &reference);
            worst = worst.max(d);
            assert!(d <= 1e-4, "{name}: conv{i:02} differs by {d}");
        }
        println!("depthwise {name}: checkpoints max diff {worst:e}");
    }
}

#[test]
fn network_on_reference_log_mel_matches_reference() {
    for (clip, _) in CLIPS {
        let out = model().infer(&reference_patches(clip)).unwrap();
        let emb: Vec<f32> = out.iter().flat_map(|o| o.embedding.clone()).collect();
        let logits: Vec<f32> = out.iter().flat_map(|o| o.logits.clone()).collect();
        let scores: Vec<f32> = out.iter().flat_map(|o| o.scores.clone()).collect();
        let d_emb = max_abs_diff(&emb, &read_f32(&format!("{clip}.embedding.f32")));
        let d_logits = max_abs_diff(&logits, &read_f32(&format!("{clip}.logits.f32")));
        let d_scores = max_abs_diff(&scores, &read_f32(&format!("{clip}.scores.f32")));
        println!(
            "{clip} (reference log-mel in): embedding {d_emb:e}, logits {d_logits:e}, scores {d_scores:e}"
        );
        assert!(d_emb <= 1e-4, "{clip}: embedding {d_emb}");
        assert!(d_logits <= 1e-3, "{clip}: logits {d_logits}");
        assert!(d_scores <= 1e-4, "{clip}: scores {d_scores}");
    }
}

/// The acceptance test: waveform → frontend → network gives the reference scores for every
/// patch of every clip, and the expected top class.
#[test]
fn end_to_end_scores_and_top_classes_match_reference() {
    let net = model();
    let mut fe = LogMelFrontend::new();
    let mut top = Vec::new();
    for (clip, _) in CLIPS {
        let out = net
            .infer(&fe.patches(&read_wav(&format!("{clip}.wav"))))
            .unwrap();
        let ref_emb = read_f32(&format!("{clip}.embedding.f32"));
        let ref_logits = read_f32(&format!("{clip}.logits.f32"));
        let ref_scores = read_f32(&format!("{clip}.scores.f32"));
        assert_eq!(out.len() * 521, ref_scores.len(), "{clip}");
        let (mut d_emb, mut d_logits, mut d_scores) = (0.0f32, 0.0f32, 0.0f32);
        for (i, o) in out.iter().enumerate() {
            d_emb = d_emb.max(max_abs_diff(
                &o.embedding,
                &ref_emb[i * 1024..(i + 1) * 1024],
            ));
            d_logits = d_logits.max(max_abs_diff(&o.logits, &ref_logits[i * 521..(i + 1) * 521]));
            d_scores = d_scores.max(max_abs_diff(&o.scores, &ref_scores[i * 521..(i + 1) * 521]));
        }
        println!(
            "{clip} (end to end): embedding {d_emb:e}, logits {d_logits:e}, scores {d_scores:e}"
        );
        assert!(d_emb <= 1e-4, "{clip}: embedding {d_emb}");
        assert!(d_logits <= 1e-3, "{clip}: logits {d_logits}");
        assert!(d_scores <= 1e-4, "{clip}: scores {d_scores}");
        let names: Vec<Vec<&str>> = out
            .iter()
            .map(|o| {
                Yamnet::top_k(&o.scores, 2)
                    .into_iter()
                    .map(|(c, _)| net.class_name(c))
                    .collect()
            })
            .collect();
        top.push((clip, names));
    }
    let top1 = |clip: &str| -> Vec<&str> {
        top.iter()
            .find(|(c, _)| *c == clip)
            .map(|(_, n)| n.iter().map(|p| p[0]).collect())
            .unwrap()
    };
    assert_eq!(top1("silence"), vec!["Silence"; 4]);
    assert_eq!(top1("sine440"), vec!["Telephone"; 4]);
    assert_eq!(top1("speech"), vec!["Speech"; 6]);
    assert_eq!(
        top1("clap"),
        vec!["Silence", "Hands", "Hands", "Silence", "Silence"]
    );
    let clap = &top.iter().find(|(c, _)| *c == "clap").unwrap().1;
    assert_eq!(clap[2][1], "Clapping");
    let sine = &top.iter().find(|(c, _)| *c == "sine440").unwrap().1;
    assert!(sine[..3].iter().all(|p| p[1] == "Dial tone"));
}

#[test]
fn class_names_and_indices() {
    let net = model();
    assert_eq!(net.class_names().len(), 521);
    assert_eq!(net.class_name(0), "Speech");
    assert_eq!(net.class_name(494), "Silence");
    assert_eq!(net.class_name(521), "");
    assert_eq!(net.class_index("Narration, monologue"), Some(3));
    assert_eq!(net.class_index("Clapping"), Some(58));
    assert_eq!(net.class_index("no such class"), None);
}

#[test]
fn batched_and_single_inference_agree() {
    let patches = reference_patches("speech");
    let batch = model().infer(&patches).unwrap();
    for (i, p) in patches.iter().enumerate() {
        let single = model().infer(std::slice::from_ref(p)).unwrap();
        let d = max_abs_diff(&single[0].scores, &batch[i].scores);
        assert!(d <= 1e-6, "patch {i}: {d}");
    }
    assert!(model().infer(&[]).unwrap().is_empty());
}

#[test]
fn missing_weights_file_is_a_clear_error() {
    let missing = data_dir().join("no-such-weights.safetensors");
    let err = Yamnet::load(&missing, &models_dir().join("yamnet_class_map.csv")).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingFile { path } if *path == missing),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("no-such-weights.safetensors"),
        "{err}"
    );
}

#[test]
fn wrong_or_missing_tensor_is_named() {
    use candle_core::{Device, Tensor};
    let csv = std::fs::read_to_string(models_dir().join("yamnet_class_map.csv")).unwrap();
    let weights = models_dir().join("yamnet.safetensors");
    let mut tensors = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    let tmp = std::env::temp_dir().join(format!("cav-models-test-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();

    tensors.insert(
        "conv03.weight".into(),
        Tensor::zeros((64, 64, 3, 3), candle_core::DType::F32, &Device::Cpu).unwrap(),
    );
    let path = tmp.join("wrong-shape.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = Yamnet::from_bytes(&std::fs::read(&path).unwrap(), &csv).unwrap_err();
    assert!(
        matches!(&err, ModelError::TensorShape { name, .. } if name == "conv03.weight"),
        "{err:?}"
    );
    assert!(err.to_string().contains("conv03.weight"), "{err}");

    tensors.remove("classifier.bias");
    let path = tmp.join("missing.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = Yamnet::from_bytes(&std::fs::read(&path).unwrap(), &csv).unwrap_err();
    // conv03 is checked first; fix it to reach the missing classifier bias.
    assert!(matches!(err, ModelError::TensorShape { .. }), "{err:?}");
    let good = candle_core::safetensors::load(&weights, &Device::Cpu).unwrap();
    tensors.insert("conv03.weight".into(), good["conv03.weight"].clone());
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let err = Yamnet::from_bytes(&std::fs::read(&path).unwrap(), &csv).unwrap_err();
    assert!(
        matches!(&err, ModelError::MissingTensor { name } if name == "classifier.bias"),
        "{err:?}"
    );
    std::fs::remove_dir_all(&tmp).unwrap();
}

#[test]
fn class_map_must_have_521_rows() {
    let weights = std::fs::read(models_dir().join("yamnet.safetensors")).unwrap();
    let err = Yamnet::from_bytes(&weights, "index,mid,display_name\n0,/m/x,Speech\n").unwrap_err();
    assert!(matches!(err, ModelError::ClassMap(_)), "{err:?}");
}
