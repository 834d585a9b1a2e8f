//! Evaluation: which value a flag has for one tenant, and why. The order is
//! documented on the crate.

use crate::{FlagDefinition, Rule, bucket};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Who a flag is evaluated for.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationContext {
    /// The tenant id; rules' `tenants` and all bucketing use it.
    pub targeting_key: String,
    /// The tenant's plan, for rules' `plans`. Set it from the tenant record,
    /// not from what a caller claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// Anything else rules may match on, by name.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

impl EvaluationContext {
    pub fn new(targeting_key: impl Into<String>) -> Self {
        EvaluationContext { targeting_key: targeting_key.into(), plan: None, attributes: Map::new() }
    }

    pub fn with_plan(mut self, plan: impl Into<String>) -> Self {
        self.plan = Some(plan.into());
        self
    }

    pub fn with_attribute(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.attributes.insert(name.into(), value.into());
        self
    }
}

/// Why a flag has the value it has, as OpenFeature names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reason {
    /// The flag has no rules, rollout or variants.
    Static,
    /// A rule matched.
    TargetingMatch,
    /// The tenant's bucket placed it in the rollout or a variant.
    Split,
    /// Nothing applied; the default value.
    Default,
    /// The flag is disabled; the default value.
    Disabled,
    /// Never produced by [`FlagDefinition::evaluate`]; for callers that
    /// report an evaluation that could not take place.
    Error,
}

impl Reason {
    /// The name on the wire, e.g. `TARGETING_MATCH`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }
}

/// A flag's value for one context.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub value: Value,
    pub reason: Reason,
    /// `rule-<index>`, `rollout`, a variant's name or `default`; none when
    /// the flag is disabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Evaluation {
    fn new(value: &Value, reason: Reason, variant: impl Into<String>) -> Self {
        Evaluation { value: value.clone(), reason, variant: Some(variant.into()) }
    }
}

impl Rule {
    /// Whether every criterion the rule lists matches `ctx`. A rule without
    /// criteria never matches.
    pub fn matches(&self, ctx: &EvaluationContext) -> bool {
        self.has_criteria()
            && (self.tenants.is_empty() || self.tenants.contains(&ctx.targeting_key))
            && (self.plans.is_empty() || ctx.plan.as_ref().is_some_and(|plan| self.plans.contains(plan)))
            && self
                .attributes
                .iter()
                .all(|(name, accepted)| ctx.attributes.get(name).is_some_and(|v| accepted.contains(v)))
    }
}

impl FlagDefinition {
    /// The flag's value for `ctx`, following the order documented on the
    /// crate. `key` is the key the flag is stored under; bucketing hashes it.
    /// Values are returned as stored: validate definitions before storing.
    pub fn evaluate(&self, key: &str, ctx: &EvaluationContext) -> Evaluation {
        if !self.enabled {
            return Evaluation { value: self.default_value.clone(), reason: Reason::Disabled, variant: None };
        }
        let variants = self.variants.as_deref().unwrap_or_default();
        if self.rules.is_empty() && self.rollout.is_none() && variants.is_empty() {
            return Evaluation::new(&self.default_value, Reason::Static, "default");
        }
        if let Some((i, rule)) = self.rules.iter().enumerate().find(|(_, rule)| rule.matches(ctx)) {
            return Evaluation::new(&rule.value, Reason::TargetingMatch, format!("rule-{i}"));
        }
        if let Some(rollout) =
            self.rollout.as_ref().filter(|r| bucket::in_rollout(key, &ctx.targeting_key, r.percentage))
        {
            return Evaluation::new(&rollout.value, Reason::Split, "rollout");
        }
        if let Some(variant) = bucket::choose_variant(key, &ctx.targeting_key, variants) {
            return Evaluation::new(&variant.value, Reason::Split, variant.name.as_str());
        }
        Evaluation::new(&self.default_value, Reason::Default, "default")
    }
}

/// Every flag's value for `ctx`, sorted by key (the map's order).
pub fn evaluate_all(defs: &BTreeMap<String, FlagDefinition>, ctx: &EvaluationContext) -> Vec<(String, Evaluation)> {
    defs.iter().map(|(key, def)| (key.clone(), def.evaluate(key, ctx))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(body: Value) -> FlagDefinition {
        let def: FlagDefinition = serde_json::from_value(body).unwrap();
        assert_eq!(def.validate("flag"), Ok(()));
        def
    }

    fn tenants() -> impl Iterator<Item = String> {
        (0..10_000).map(|i| format!("ten_{i:026}"))
    }

    fn share(count: usize) -> f64 {
        count as f64 / 100.0
    }

    #[test]
    fn a_flag_with_nothing_to_decide_is_static() {
        let flag = def(json!({"type": "string", "defaultValue": "v1"}));
        let eval = flag.evaluate("flag", &EvaluationContext::new("ten_a"));
        assert_eq!(eval, Evaluation { value: json!("v1"), reason: Reason::Static, variant: Some("default".into()) });
    }

    #[test]
    fn a_disabled_flag_gives_its_default_whatever_matches() {
        let flag = def(json!({
            "type": "boolean", "enabled": false, "defaultValue": false,
            "rules": [{"tenants": ["ten_a"], "value": true}], "rollout": {"percentage": 100, "value": true}
        }));
        let eval = flag.evaluate("flag", &EvaluationContext::new("ten_a"));
        assert_eq!(eval, Evaluation { value: json!(false), reason: Reason::Disabled, variant: None });
        assert_eq!(serde_json::to_value(&eval).unwrap(), json!({"value": false, "reason": "DISABLED"}));
        let static_off = def(json!({"type": "boolean", "enabled": false, "defaultValue": true}));
        assert_eq!(static_off.evaluate("flag", &EvaluationContext::new("ten_a")).reason, Reason::Disabled);
    }

    #[test]
    fn rules_target_by_tenant() {
        let flag = def(
            json!({"type": "boolean", "defaultValue": false, "rules": [{"tenants": ["ten_a", "ten_b"], "value": true}]}),
        );
        let b = flag.evaluate("flag", &EvaluationContext::new("ten_b"));
        assert_eq!(
            b,
            Evaluation { value: json!(true), reason: Reason::TargetingMatch, variant: Some("rule-0".into()) }
        );
        let c = flag.evaluate("flag", &EvaluationContext::new("ten_c"));
        assert_eq!(c, Evaluation { value: json!(false), reason: Reason::Default, variant: Some("default".into()) });
    }

    #[test]
    fn rules_target_by_plan_and_need_every_criterion() {
        let flag = def(json!({
            "type": "boolean", "defaultValue": false,
            "rules": [{"tenants": ["ten_a", "ten_b"], "plans": ["enterprise"], "value": true}]
        }));
        let on = |ctx: EvaluationContext| flag.evaluate("flag", &ctx).value == json!(true);
        assert!(on(EvaluationContext::new("ten_a").with_plan("enterprise")));
        assert!(!on(EvaluationContext::new("ten_a").with_plan("pro")));
        assert!(!on(EvaluationContext::new("ten_a")), "no plan is not any listed plan");
        assert!(!on(EvaluationContext::new("ten_c").with_plan("enterprise")));
    }

    #[test]
    fn rules_target_by_attribute_value() {
        let flag = def(json!({
            "type": "string", "defaultValue": "us",
            "rules": [{"attributes": {"region": ["eu-west", "eu-central"], "beta": [true]}, "value": "eu"}]
        }));
        let region = |ctx: EvaluationContext| flag.evaluate("flag", &ctx).value;
        let eu = EvaluationContext::new("ten_a").with_attribute("region", "eu-central").with_attribute("beta", true);
        assert_eq!(region(eu), json!("eu"));
        let not_beta =
            EvaluationContext::new("ten_a").with_attribute("region", "eu-central").with_attribute("beta", false);
        assert_eq!(region(not_beta), json!("us"));
        let missing = EvaluationContext::new("ten_a").with_attribute("region", "eu-west");
        assert_eq!(region(missing), json!("us"));
        let other = EvaluationContext::new("ten_a").with_attribute("region", "us-east").with_attribute("beta", true);
        assert_eq!(region(other), json!("us"));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let flag = def(json!({
            "type": "number", "defaultValue": 0,
            "rules": [
                {"tenants": ["ten_a"], "value": 1},
                {"plans": ["pro"], "value": 2},
                {"tenants": ["ten_a"], "plans": ["pro"], "value": 3}
            ]
        }));
        let a_pro = flag.evaluate("flag", &EvaluationContext::new("ten_a").with_plan("pro"));
        assert_eq!((a_pro.value, a_pro.variant.as_deref()), (json!(1), Some("rule-0")));
        let b_pro = flag.evaluate("flag", &EvaluationContext::new("ten_b").with_plan("pro"));
        assert_eq!((b_pro.value, b_pro.variant.as_deref()), (json!(2), Some("rule-1")));
    }

    #[test]
    fn a_rule_without_criteria_never_matches_even_unvalidated() {
        let flag: FlagDefinition =
            serde_json::from_value(json!({"type": "boolean", "defaultValue": false, "rules": [{"value": true}]}))
                .unwrap();
        assert_eq!(flag.evaluate("flag", &EvaluationContext::new("ten_a")).reason, Reason::Default);
    }

    #[test]
    fn rules_come_before_the_rollout() {
        let flag = def(json!({
            "type": "string", "defaultValue": "off",
            "rules": [{"tenants": ["ten_a"], "value": "pinned"}], "rollout": {"percentage": 100, "value": "on"}
        }));
        assert_eq!(flag.evaluate("flag", &EvaluationContext::new("ten_a")).value, json!("pinned"));
        let b = flag.evaluate("flag", &EvaluationContext::new("ten_b"));
        assert_eq!(b, Evaluation { value: json!("on"), reason: Reason::Split, variant: Some("rollout".into()) });
    }

    #[test]
    fn growing_a_rollout_from_10_to_50_percent_keeps_everyone_already_in() {
        let at = |percentage: f64| {
            def(json!({"type": "boolean", "defaultValue": false, "rollout": {"percentage": percentage, "value": true}}))
        };
        let (ten, fifty) = (at(10.0), at(50.0));
        let (mut in_ten, mut in_fifty) = (0, 0);
        for tenant in tenants() {
            let ctx = EvaluationContext::new(tenant.as_str());
            let was_in = ten.evaluate("new-extractor", &ctx).value == json!(true);
            let is_in = fifty.evaluate("new-extractor", &ctx).value == json!(true);
            assert!(!was_in || is_in, "{tenant} left the rollout when it grew");
            in_ten += usize::from(was_in);
            in_fifty += usize::from(is_in);
        }
        assert!((share(in_ten) - 10.0).abs() <= 2.0, "{}% in at 10%", share(in_ten));
        assert!((share(in_fifty) - 50.0).abs() <= 2.0, "{}% in at 50%", share(in_fifty));
    }

    #[test]
    fn variant_shares_follow_the_weights_and_stick_to_each_tenant() {
        let flag = def(json!({
            "type": "string", "defaultValue": "control",
            "variants": [
                {"name": "control", "weight": 50, "value": "control"},
                {"name": "fast", "weight": 30, "value": "fast"},
                {"name": "thorough", "weight": 20, "value": "thorough"}
            ]
        }));
        let mut counts = BTreeMap::new();
        for tenant in tenants() {
            let ctx = EvaluationContext::new(tenant.as_str());
            let eval = flag.evaluate("extractor-experiment", &ctx);
            assert_eq!(eval.reason, Reason::Split);
            assert_eq!(flag.evaluate("extractor-experiment", &ctx), eval, "{tenant} changed variant");
            assert_eq!(eval.variant.as_deref(), eval.value.as_str(), "the variant's value comes with its name");
            *counts.entry(eval.variant.unwrap_or_default()).or_insert(0) += 1;
        }
        for (name, weight) in [("control", 50.0), ("fast", 30.0), ("thorough", 20.0)] {
            let got = share(counts[name]);
            assert!((got - weight).abs() <= 2.0, "{name}: {got}% for weight {weight}%");
        }
    }

    #[test]
    fn tenants_outside_the_rollout_fall_to_variants_then_default() {
        let flag = def(json!({
            "type": "string", "defaultValue": "none",
            "rollout": {"percentage": 50, "value": "rolled"},
            "variants": [{"name": "a", "weight": 1, "value": "a"}, {"name": "b", "weight": 1, "value": "b"}]
        }));
        let mut seen = BTreeMap::new();
        for tenant in tenants().take(1_000) {
            let eval = flag.evaluate("flag", &EvaluationContext::new(tenant.as_str()));
            assert_eq!(eval.reason, Reason::Split);
            *seen.entry(eval.variant.unwrap_or_default()).or_insert(0) += 1;
        }
        assert_eq!(seen.keys().map(String::as_str).collect::<Vec<_>>(), ["a", "b", "rollout"]);

        let no_variants =
            def(json!({"type": "string", "defaultValue": "none", "rollout": {"percentage": 0, "value": "x"}}));
        let eval = no_variants.evaluate("flag", &EvaluationContext::new("ten_a"));
        assert_eq!(eval, Evaluation { value: json!("none"), reason: Reason::Default, variant: Some("default".into()) });
    }

    #[test]
    fn evaluate_all_is_sorted_by_key() {
        let defs: BTreeMap<String, FlagDefinition> = [
            ("zeta".to_string(), def(json!({"type": "number", "defaultValue": 26}))),
            ("alpha".to_string(), def(json!({"type": "number", "defaultValue": 1}))),
        ]
        .into_iter()
        .collect();
        let all = evaluate_all(&defs, &EvaluationContext::new("ten_a"));
        let keys: Vec<(&str, &Value)> = all.iter().map(|(k, e)| (k.as_str(), &e.value)).collect();
        assert_eq!(keys, [("alpha", &json!(1)), ("zeta", &json!(26))]);
    }

    #[test]
    fn reasons_use_the_openfeature_names() {
        for (reason, name) in [
            (Reason::Static, "STATIC"),
            (Reason::TargetingMatch, "TARGETING_MATCH"),
            (Reason::Split, "SPLIT"),
            (Reason::Default, "DEFAULT"),
            (Reason::Disabled, "DISABLED"),
            (Reason::Error, "ERROR"),
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), json!(name));
            assert_eq!(reason.as_str(), name);
        }
    }
}
