//! `summary --list --json`: the registry as JSON, one object per model in registry order,
//! each with the fields the scripts read (`scripts/registry_json.py`).

mod common;

use deepfake::models::registry;

#[test]
fn summary_list_json_is_the_registry() {
    let out = std::process::Command::new(common::example("summary"))
        .args(["--list", "--json"])
        .output()
        .expect("run summary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&out.stdout).expect("summary --list --json prints a JSON list");
    let infos = registry::registry();
    assert_eq!(rows.len(), infos.len());
    for (row, info) in rows.iter().zip(infos) {
        let name = info.name;
        assert_eq!(row["name"], name);
        assert_eq!(row["family"], info.family, "{name}");
        assert_eq!(
            row["keras_application"].as_str(),
            info.keras_application,
            "{name}"
        );
        assert_eq!(
            row["input_size"],
            serde_json::json!(info.input_size),
            "{name}"
        );
        assert_eq!(row["min_input_size"], info.min_input_size, "{name}");
        assert_eq!(row["gradcam_layer"], info.gradcam_layer, "{name}");
        match info.keras_params {
            Some(k) => {
                assert_eq!(
                    row["keras_params"]["with_top"]["total"], k.with_top.total,
                    "{name}"
                );
                assert_eq!(
                    row["keras_params"]["with_top"]["trainable"], k.with_top.trainable,
                    "{name}"
                );
                assert_eq!(
                    row["keras_params"]["without_top"]["total"].as_i64(),
                    k.without_top.map(|c| c.total),
                    "{name}"
                );
            }
            None => assert!(row["keras_params"].is_null(), "{name}"),
        }
        match info.study_recipe {
            Some(r) => {
                assert_eq!(row["study_recipe"]["early_stop"], r.early_stop, "{name}");
                assert_eq!(row["study_recipe"]["reduce_lr"], r.reduce_lr, "{name}");
                assert_eq!(row["study_recipe"]["lr"].as_f64(), Some(r.lr), "{name}");
                assert_eq!(
                    row["study_recipe"]["in_comparison"], r.in_comparison,
                    "{name}"
                );
            }
            None => assert!(row["study_recipe"].is_null(), "{name}"),
        }
        assert!(row["preprocessing"]["channel_order"].is_string(), "{name}");
        assert!(
            row["default_top"].is_object() || row["default_top"].is_string(),
            "{name}"
        );
    }
}
