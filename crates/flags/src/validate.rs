//! Validation of a flag before it is stored: every fault is reported with the
//! JSON path of the field at fault, so an editor can mark them all at once.

use crate::{FlagDefinition, FlagType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One fault in a definition: where (`rollout.percentage`, `rules[2].value`)
/// and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

/// Longest flag key accepted.
const MAX_KEY_LEN: usize = 128;

/// Whether `key` is a valid flag key: `^[a-z0-9][a-z0-9_.-]{0,127}$`.
pub fn is_valid_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    let starts_well = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    starts_well
        && key.len() <= MAX_KEY_LEN
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'-'))
}

/// Variant names evaluation itself reports, which a variant may not take, so
/// that analytics can tell an experiment arm from a rule, rollout or default.
fn is_reserved_variant_name(name: &str) -> bool {
    name == "default"
        || name == "rollout"
        || name.strip_prefix("rule-").is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

impl FlagDefinition {
    /// Checks the definition stored under `key`, reporting every fault:
    ///
    /// - `key` matches `^[a-z0-9][a-z0-9_.-]{0,127}$`;
    /// - `defaultValue`, each `rules[i].value`, `rollout.value` and each
    ///   `variants[i].value` is of the flag's type (`json` takes anything);
    /// - each rule lists at least one criterion, and each attribute it names
    ///   lists at least one value;
    /// - `rollout.percentage` is finite and from 0 to 100;
    /// - `variants`, when present, is non-empty, its weights add up to more
    ///   than 0, and its names are non-empty, unique and not one evaluation
    ///   reports itself (`default`, `rollout`, `rule-<n>`).
    pub fn validate(&self, key: &str) -> Result<(), Vec<FieldError>> {
        let mut errors = Errors::default();
        if !is_valid_key(key) {
            errors.push(
                "key",
                "must be 1 to 128 characters of a-z, 0-9, '_', '.' or '-', starting with a letter or digit",
            );
        }
        errors.check_type(self.flag_type, "defaultValue", &self.default_value);

        for (i, rule) in self.rules.iter().enumerate() {
            if !rule.has_criteria() {
                errors.push(format!("rules[{i}]"), "must list at least one of tenants, plans or attributes");
            }
            for (name, values) in &rule.attributes {
                if values.is_empty() {
                    errors.push(format!("rules[{i}].attributes.{name}"), "must list at least one value");
                }
            }
            errors.check_type(self.flag_type, &format!("rules[{i}].value"), &rule.value);
        }

        if let Some(rollout) = &self.rollout {
            if !(rollout.percentage.is_finite() && (0.0..=100.0).contains(&rollout.percentage)) {
                errors.push("rollout.percentage", "must be a number from 0 to 100");
            }
            errors.check_type(self.flag_type, "rollout.value", &rollout.value);
        }

        if let Some(variants) = &self.variants {
            if variants.is_empty() {
                errors.push("variants", "must list at least one variant, or be left out");
            } else if variants.iter().all(|v| v.weight == 0) {
                errors.push("variants", "the weights must add up to more than 0");
            }
            let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
            for (i, variant) in variants.iter().enumerate() {
                let path = format!("variants[{i}].name");
                if variant.name.is_empty() {
                    errors.push(path, "must not be empty");
                } else if is_reserved_variant_name(&variant.name) {
                    errors.push(path, "is reserved: evaluation reports 'default', 'rollout' and 'rule-<n>' itself");
                } else if let Some(first) = seen.get(variant.name.as_str()) {
                    errors.push(path, format!("repeats the name of variants[{first}]"));
                } else {
                    seen.insert(&variant.name, i);
                }
                errors.check_type(self.flag_type, &format!("variants[{i}].value"), &variant.value);
            }
        }

        errors.finish()
    }
}

#[derive(Default)]
struct Errors(Vec<FieldError>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { path: path.into(), message: message.into() });
    }

    fn check_type(&mut self, flag_type: FlagType, path: &str, value: &Value) {
        if !flag_type.admits(value) {
            let found = match value {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            self.push(path, format!("must be a {} like the flag, not {found}", flag_type.as_str()));
        }
    }

    fn finish(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() { Ok(()) } else { Err(self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(body: Value) -> FlagDefinition {
        serde_json::from_value(body).unwrap()
    }

    fn paths(result: Result<(), Vec<FieldError>>) -> Vec<String> {
        result.unwrap_err().into_iter().map(|e| e.path).collect()
    }

    #[test]
    fn a_sound_definition_passes() {
        let flag = def(json!({
            "type": "string", "defaultValue": "v1",
            "rules": [{"attributes": {"region": ["eu"]}, "value": "v2"}],
            "rollout": {"percentage": 12.5, "value": "v2"},
            "variants": [{"name": "control", "weight": 1, "value": "v1"}, {"name": "fast", "weight": 0, "value": "v3"}]
        }));
        assert_eq!(flag.validate("extractor.version"), Ok(()));
        let json =
            def(json!({"type": "json", "defaultValue": null, "rules": [{"plans": ["pro"], "value": {"a": [1]}}]}));
        assert_eq!(json.validate("0"), Ok(()));
    }

    #[test]
    fn every_bad_path_of_a_definition_with_several_faults_is_listed() {
        let flag = def(json!({
            "type": "boolean", "defaultValue": "no",
            "rules": [
                {"value": true},
                {"tenants": ["ten_a"], "value": 1},
                {"attributes": {"region": []}, "value": false}
            ],
            "rollout": {"percentage": 150, "value": "yes"},
            "variants": [
                {"name": "a", "weight": 0, "value": true},
                {"name": "", "weight": 0, "value": false},
                {"name": "a", "weight": 0, "value": null},
                {"name": "rollout", "weight": 0, "value": true}
            ]
        }));
        let errors = flag.validate("Bad Key").unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "key",
                "defaultValue",
                "rules[0]",
                "rules[1].value",
                "rules[2].attributes.region",
                "rollout.percentage",
                "rollout.value",
                "variants",
                "variants[1].name",
                "variants[2].name",
                "variants[2].value",
                "variants[3].name",
            ]
        );
        assert_eq!(errors[1].message, "must be a boolean like the flag, not a string");
        assert_eq!(errors[9].message, "repeats the name of variants[0]");
        assert_eq!(
            serde_json::to_value(&errors[5]).unwrap(),
            json!({"path": "rollout.percentage", "message": "must be a number from 0 to 100"})
        );
    }

    #[test]
    fn an_empty_variant_list_is_refused() {
        let flag = def(json!({"type": "number", "defaultValue": 1, "variants": []}));
        assert_eq!(paths(flag.validate("f")), ["variants"]);
    }

    #[test]
    fn percentages_outside_0_to_100_or_not_finite_are_refused() {
        for bad in [-0.01, 100.01, f64::NAN, f64::INFINITY] {
            let mut flag =
                def(json!({"type": "boolean", "defaultValue": false, "rollout": {"percentage": 1, "value": true}}));
            if let Some(r) = flag.rollout.as_mut() {
                r.percentage = bad;
            }
            assert_eq!(paths(flag.validate("f")), ["rollout.percentage"], "{bad}");
        }
        for good in [0.0, 0.01, 100.0] {
            let flag =
                def(json!({"type": "boolean", "defaultValue": false, "rollout": {"percentage": good, "value": true}}));
            assert_eq!(flag.validate("f"), Ok(()), "{good}");
        }
    }

    #[test]
    fn keys_follow_the_documented_pattern() {
        let long = "a".repeat(128);
        for good in ["a", "0", "new-extractor", "pdf.ocr_v2", long.as_str()] {
            assert!(is_valid_key(good), "{good}");
        }
        let too_long = "a".repeat(129);
        for bad in ["", "-a", ".a", "_a", "A", "new extractor", "ä", "a/b", too_long.as_str()] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn number_flags_take_integers_and_floats_only() {
        let flag = def(
            json!({"type": "number", "defaultValue": 1.5, "rules": [{"plans": ["a"], "value": 2}, {"plans": ["b"], "value": "3"}]}),
        );
        assert_eq!(paths(flag.validate("f")), ["rules[1].value"]);
    }
}
