//! Feature flags and experiments: their definitions, validation and
//! evaluation, and the wire types of the OpenFeature Remote Evaluation
//! Protocol (OFREP). Pure: no I/O, no async. The config service stores
//! [`FlagDefinition`]s, validates them on write with
//! [`FlagDefinition::validate`] and serves evaluations over OFREP.
//!
//! # Evaluation order
//!
//! [`FlagDefinition::evaluate`] takes the first step that applies:
//!
//! | step | when | value | reason | variant |
//! |------|------|-------|--------|---------|
//! | 1 | `enabled` is false | `defaultValue` | `DISABLED` | none |
//! | 2 | no rules, no rollout, no variants | `defaultValue` | `STATIC` | `default` |
//! | 3 | a rule matches (the first one, in order) | the rule's value | `TARGETING_MATCH` | `rule-<index>` |
//! | 4 | the tenant falls inside the rollout | the rollout's value | `SPLIT` | `rollout` |
//! | 5 | the flag has variants | the variant's value | `SPLIT` | the variant's name |
//! | 6 | otherwise | `defaultValue` | `DEFAULT` | `default` |
//!
//! A rule matches when every criterion it lists matches the
//! [`EvaluationContext`]: the targeting key (the tenant id) is one of
//! `tenants`, the plan is one of `plans`, and for each named attribute the
//! context's value equals one of the listed values. An empty list is no
//! criterion; a rule with no criterion at all is invalid and never matches.
//!
//! # Sticky bucketing
//!
//! Rollouts and variants place each tenant with a hash of the flag key and
//! tenant id, never with randomness, so a tenant sees the same value on every
//! replica and every request, and growing a rollout only ever adds tenants.
//! The formulas are public API and written out on [`bucket()`],
//! [`in_rollout`] and [`choose_variant`].
//!
//! # OFREP
//!
//! [`OfrepRequest`] reads `{"context": {"targetingKey": …, …}}`;
//! [`OfrepSuccess`], [`OfrepError`] and [`OfrepBulk`] are the response
//! bodies of `POST /ofrep/v1/evaluate/flags/{key}` and
//! `POST /ofrep/v1/evaluate/flags`. The targeting key is the tenant id: the
//! service should check it against the tenant it authenticated, and set
//! [`EvaluationContext::plan`] from its own tenant record rather than from
//! anything the caller sent.

mod bucket;
mod definition;
mod evaluate;
mod ofrep;
mod validate;

pub use bucket::{BUCKETS, bucket, choose_variant, in_rollout, rollout_threshold, variant_bucket};
pub use definition::{FlagDefinition, FlagType, Rollout, Rule, Variant};
pub use evaluate::{Evaluation, EvaluationContext, Reason, evaluate_all};
pub use ofrep::{
    OfrepBulk, OfrepBulkFailure, OfrepBulkItem, OfrepError, OfrepErrorCode, OfrepRequest, OfrepSuccess, RequestError,
};
pub use validate::{FieldError, is_valid_key};
