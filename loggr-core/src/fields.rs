//! [`Fields`]: the named values of an event, a small map kept as a sorted vector.
//!
//! Events carry a handful of fields (peer address, port, protocol, a few grok captures), and a
//! sorted vector holds a handful far more cheaply than a `BTreeMap`, whose first insert
//! allocates a whole node: one small allocation per event instead of one large one, and
//! lookups by binary search.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::{Text, Value};

/// Named values attached to an event (pyloggr's custom fields, BuzzSaw's `extra_info`), in
/// name order.
///
/// ```
/// use loggr_core::{Fields, Value};
///
/// let mut fields = Fields::new();
/// fields.insert("userid".into(), Value::from("alice"));
/// fields.insert("bytes".into(), Value::Int(42));
/// assert_eq!(fields.get("userid").and_then(Value::as_str), Some("alice"));
/// assert_eq!(fields.keys().map(|k| &**k).collect::<Vec<_>>(), ["bytes", "userid"]);
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct Fields {
    entries: Vec<(Text, Value)>,
}

impl Fields {
    /// No fields.
    pub const fn new() -> Self {
        Fields {
            entries: Vec::new(),
        }
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(key, _)| (**key).cmp(name))
    }

    /// A field's value.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).ok().map(|at| &self.entries[at].1)
    }

    /// A field's value, to change it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        self.position(name).ok().map(|at| &mut self.entries[at].1)
    }

    /// Whether the field is set.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// Sets a field; returns its previous value.
    pub fn insert(&mut self, name: Text, value: Value) -> Option<Value> {
        // Sources and parsers mostly add names in order: append without searching.
        let at = if self.entries.last().is_none_or(|(last, _)| **last < *name) {
            self.entries.len()
        } else {
            match self.position(&name) {
                Ok(at) => return Some(std::mem::replace(&mut self.entries[at].1, value)),
                Err(at) => at,
            }
        };
        if self.entries.capacity() == 0 {
            self.entries.reserve_exact(4);
        }
        self.entries.insert(at, (name, value));
        None
    }

    /// Removes a field; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).ok().map(|at| self.entries.remove(at).1)
    }

    /// Removes every field.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The fields in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&Text, &Value)> + '_ {
        self.entries.iter().map(|(key, value)| (key, value))
    }

    /// The names in order.
    pub fn keys(&self) -> impl Iterator<Item = &Text> + '_ {
        self.entries.iter().map(|(key, _)| key)
    }

    /// The values in name order.
    pub fn values(&self) -> impl Iterator<Item = &Value> + '_ {
        self.entries.iter().map(|(_, value)| value)
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(Text, Value)> for Fields {
    fn from_iter<I: IntoIterator<Item = (Text, Value)>>(iter: I) -> Self {
        let mut fields = Fields::new();
        fields.extend(iter);
        fields
    }
}

impl Extend<(Text, Value)> for Fields {
    fn extend<I: IntoIterator<Item = (Text, Value)>>(&mut self, iter: I) {
        for (name, value) in iter {
            self.insert(name, value);
        }
    }
}

impl IntoIterator for Fields {
    type Item = (Text, Value);
    type IntoIter = std::vec::IntoIter<(Text, Value)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl<'a> IntoIterator for &'a Fields {
    type Item = (&'a Text, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (Text, Value)>,
        fn(&'a (Text, Value)) -> (&'a Text, &'a Value),
    >;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(key, value)| (key, value))
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (key, value) in &self.entries {
            map.serialize_entry(&**key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;
        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of field name to value")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Fields, E> {
                Ok(Fields::new())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Fields::new();
                while let Some((name, value)) = map.next_entry::<String, Value>()? {
                    fields.insert(Text::from(name), value);
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_any(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_sorted_map() {
        let mut fields = Fields::new();
        assert_eq!(fields.insert("b".into(), Value::Int(1)), None);
        assert_eq!(fields.insert("a".into(), Value::Int(2)), None);
        assert_eq!(fields.insert("c".into(), Value::Int(3)), None);
        assert_eq!(
            fields.insert("b".into(), Value::Int(4)),
            Some(Value::Int(1))
        );
        assert_eq!(fields.len(), 3);
        assert_eq!(
            fields.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        assert_eq!(fields.get("b"), Some(&Value::Int(4)));
        assert_eq!(fields.remove("a"), Some(Value::Int(2)));
        assert!(!fields.contains_key("a"));
        let json = serde_json::to_string(&fields).unwrap();
        assert_eq!(json, r#"{"b":4,"c":3}"#);
        let back: Fields = serde_json::from_str(r#"{"z":1,"b":4,"c":3}"#).unwrap();
        assert_eq!(
            back.keys().map(|k| &**k).collect::<Vec<_>>(),
            ["b", "c", "z"]
        );
    }

    proptest::proptest! {
        /// Any mix of inserts (in order, out of order, replacing the last name) and removes
        /// leaves the same contents as a `BTreeMap`.
        #[test]
        fn matches_a_btree_map(ops in proptest::collection::vec((0u8..3, 0u8..8, 0i64..100), 0..40)) {
            let mut fields = Fields::new();
            let mut model = std::collections::BTreeMap::new();
            for (op, key, value) in ops {
                let name = format!("k{key}");
                if op == 0 {
                    proptest::prop_assert_eq!(fields.remove(&name), model.remove(&name));
                } else {
                    proptest::prop_assert_eq!(
                        fields.insert(Text::from(name.clone()), Value::Int(value)),
                        model.insert(name, Value::Int(value))
                    );
                }
                let ours: Vec<(String, Value)> =
                    fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
                let theirs: Vec<(String, Value)> =
                    model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                proptest::prop_assert_eq!(ours, theirs);
            }
        }
    }
}
