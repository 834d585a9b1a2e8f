//! Scopes an API key or user carries, and the roles that map to them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "content:fetch")]
    ContentFetch,
    #[serde(rename = "content:crawl")]
    ContentCrawl,
    #[serde(rename = "keys:read")]
    KeysRead,
    #[serde(rename = "keys:write")]
    KeysWrite,
    #[serde(rename = "usage:read")]
    UsageRead,
    #[serde(rename = "config:read")]
    ConfigRead,
    #[serde(rename = "config:write")]
    ConfigWrite,
    #[serde(rename = "audit:read")]
    AuditRead,
}

pub const ALL_SCOPES: [Scope; 8] = [
    Scope::ContentFetch,
    Scope::ContentCrawl,
    Scope::KeysRead,
    Scope::KeysWrite,
    Scope::UsageRead,
    Scope::ConfigRead,
    Scope::ConfigWrite,
    Scope::AuditRead,
];

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ContentFetch => "content:fetch",
            Scope::ContentCrawl => "content:crawl",
            Scope::KeysRead => "keys:read",
            Scope::KeysWrite => "keys:write",
            Scope::UsageRead => "usage:read",
            Scope::ConfigRead => "config:read",
            Scope::ConfigWrite => "config:write",
            Scope::AuditRead => "audit:read",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ALL_SCOPES.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| format!("unknown scope `{s}`"))
    }
}

/// A set of scopes, serialized as a sorted JSON array of strings. One bit each:
/// a `u8` holds eight scopes, so a ninth widens it.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn all() -> Self {
        ALL_SCOPES.into_iter().collect()
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn is_subset_of(self, other: ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        ALL_SCOPES.into_iter().filter(move |s| self.contains(*s))
    }

    /// Space-separated, the form stored in databases and tokens.
    pub fn to_space_separated(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(" ")
    }

    pub fn from_space_separated(s: &str) -> Result<Self, String> {
        s.split_whitespace().map(str::parse).collect()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        ScopeSet(iter.into_iter().fold(0, |acc, s| acc | s.bit()))
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for ScopeSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Scope>::deserialize(d)?.into_iter().collect())
    }
}

/// A tenant user's role; each maps to a fixed set of scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Developer,
    Viewer,
}

impl Role {
    pub fn scopes(self) -> ScopeSet {
        use Scope::*;
        match self {
            Role::Owner | Role::Admin => ScopeSet::all(),
            Role::Developer => [ContentFetch, ContentCrawl, KeysRead, UsageRead, ConfigRead].into_iter().collect(),
            Role::Viewer => [KeysRead, UsageRead, ConfigRead].into_iter().collect(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).map_err(|_| format!("unknown role `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_sets_round_trip_as_strings() {
        let set: ScopeSet = [Scope::KeysWrite, Scope::ContentFetch].into_iter().collect();
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["content:fetch","keys:write"]"#);
        assert_eq!(ScopeSet::from_space_separated(&set.to_space_separated()), Ok(set));
        assert!(set.is_subset_of(ScopeSet::all()));
        assert!(!ScopeSet::all().is_subset_of(set));
        assert!(serde_json::from_str::<ScopeSet>(r#"["admin:everything"]"#).is_err());
    }

    #[test]
    fn every_scope_has_its_own_bit_and_name() {
        let all = ScopeSet::all();
        assert_eq!(all.iter().count(), ALL_SCOPES.len());
        for scope in ALL_SCOPES {
            assert_eq!(scope.as_str().parse(), Ok(scope));
            let one: ScopeSet = [scope].into_iter().collect();
            assert_eq!(ScopeSet::from_space_separated(&one.to_space_separated()), Ok(one));
        }
        assert_eq!("audit:read".parse(), Ok(Scope::AuditRead));
    }

    #[test]
    fn roles_narrow_scopes() {
        assert_eq!(Role::Owner.scopes(), ScopeSet::all());
        assert!(Role::Owner.scopes().contains(Scope::AuditRead));
        assert!(!Role::Developer.scopes().contains(Scope::AuditRead));
        assert!(!Role::Viewer.scopes().contains(Scope::ContentFetch));
        assert!(Role::Developer.scopes().contains(Scope::ContentFetch));
        assert!(!Role::Developer.scopes().contains(Scope::KeysWrite));
        assert_eq!("viewer".parse(), Ok(Role::Viewer));
    }
}
