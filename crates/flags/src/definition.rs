//! What a flag is, as stored and served: its type, default, targeting rules,
//! percentage rollout and experiment variants. JSON is camelCase and unknown
//! fields are refused, so a misspelt `rollout` is an error, not a no-op.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// The type every value of a flag must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FlagType {
    Boolean,
    String,
    Number,
    /// Any JSON value.
    Json,
}

impl FlagType {
    /// Whether `value` is of this type: a JSON boolean, string or number, or
    /// anything at all for `json`.
    pub fn admits(self, value: &Value) -> bool {
        match self {
            FlagType::Boolean => value.is_boolean(),
            FlagType::String => value.is_string(),
            FlagType::Number => value.is_number(),
            FlagType::Json => true,
        }
    }

    /// The name used in JSON: `boolean`, `string`, `number` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagType::Boolean => "boolean",
            FlagType::String => "string",
            FlagType::Number => "number",
            FlagType::Json => "json",
        }
    }
}

/// One flag, under a key kept beside it (the key is not part of the body).
///
/// ```json
/// {"type": "boolean", "enabled": true, "defaultValue": false,
///  "rules": [{"tenants": ["ten_…"], "plans": ["enterprise"], "value": true}],
///  "rollout": {"percentage": 10, "value": true}}
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FlagDefinition {
    #[serde(rename = "type")]
    pub flag_type: FlagType,
    /// A disabled flag always evaluates to `defaultValue`. Defaults to true.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    pub default_value: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tried in order; the first that matches decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    /// An experiment: tenants outside the rules and rollout are split over
    /// these by weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<Variant>>,
}

fn enabled_by_default() -> bool {
    true
}

/// Targeting: a value for the tenants that match every criterion listed.
/// An empty list (or map) is no criterion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rule {
    /// Tenant ids; matches when the context's targeting key is one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
    /// Plan names; matches when the context's plan is one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<String>,
    /// For each attribute name, the values accepted; matches when the
    /// context has that attribute and it equals one of them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, Vec<Value>>,
    pub value: Value,
}

impl Rule {
    /// Whether the rule lists anything to match on. A rule without criteria
    /// is invalid, and evaluation never applies it.
    pub fn has_criteria(&self) -> bool {
        !(self.tenants.is_empty() && self.plans.is_empty() && self.attributes.is_empty())
    }
}

/// A percentage of tenants, chosen by sticky bucket, who get `value`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    /// From 0 to 100; two decimals are meaningful (buckets are hundredths of
    /// a percent).
    pub percentage: f64,
    pub value: Value,
}

/// One arm of an experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Variant {
    /// Reported as the evaluation's variant, so analytics can tell arms apart.
    pub name: String,
    /// Relative: a variant's share is its weight over the total.
    pub weight: u32,
    pub value: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_documented_example_reads_with_defaults_filled_in() {
        let def: FlagDefinition = serde_json::from_value(json!({
            "type": "boolean",
            "defaultValue": false,
            "rules": [{"tenants": ["ten_a"], "plans": ["enterprise"], "value": true}],
            "rollout": {"percentage": 10, "value": true}
        }))
        .unwrap();
        assert_eq!(def.flag_type, FlagType::Boolean);
        assert!(def.enabled);
        assert_eq!(def.rules[0].tenants, ["ten_a"]);
        assert!(def.rules[0].attributes.is_empty());
        assert_eq!(def.rollout.as_ref().map(|r| r.percentage), Some(10.0));
        assert_eq!(def.variants, None);
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        let cases = [
            json!({"type": "boolean", "defaultValue": false, "rollot": {"percentage": 10, "value": true}}),
            json!({"type": "boolean", "defaultValue": false, "rules": [{"tenant": ["ten_a"], "value": true}]}),
            json!({"type": "boolean", "defaultValue": false, "rollout": {"percent": 10, "value": true}}),
            json!({"type": "string", "defaultValue": "a", "variants": [{"name": "a", "weight": 1, "value": "a", "x": 1}]}),
        ];
        for case in cases {
            let err = serde_json::from_value::<FlagDefinition>(case.clone()).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{case}: {err}");
        }
    }

    #[test]
    fn default_value_and_type_are_required_and_types_are_lowercase() {
        assert!(serde_json::from_value::<FlagDefinition>(json!({"type": "boolean"})).is_err());
        assert!(serde_json::from_value::<FlagDefinition>(json!({"defaultValue": 1})).is_err());
        assert!(serde_json::from_value::<FlagDefinition>(json!({"type": "Boolean", "defaultValue": true})).is_err());
        for (name, ty) in [
            ("boolean", FlagType::Boolean),
            ("string", FlagType::String),
            ("number", FlagType::Number),
            ("json", FlagType::Json),
        ] {
            let def: FlagDefinition = serde_json::from_value(json!({"type": name, "defaultValue": null})).unwrap();
            assert_eq!(def.flag_type, ty);
            assert_eq!(ty.as_str(), name);
        }
    }

    #[test]
    fn a_definition_round_trips_without_empty_fields() {
        let def: FlagDefinition = serde_json::from_value(json!({
            "type": "number", "enabled": false, "defaultValue": 3, "rules": [{"plans": ["pro"], "value": 5}]
        }))
        .unwrap();
        let back = serde_json::to_value(&def).unwrap();
        assert_eq!(
            back,
            json!({"type": "number", "enabled": false, "defaultValue": 3, "rules": [{"plans": ["pro"], "value": 5}]})
        );
        assert_eq!(serde_json::from_value::<FlagDefinition>(back).unwrap(), def);
    }
}
