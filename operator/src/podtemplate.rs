//! Merging pod template overrides, in the spirit of a strategic merge patch.
//!
//! Objects merge key by key; lists whose items all are objects with a `name` (containers,
//! initContainers, volumes, env, ports, volumeMounts) merge item by item on that name; any other
//! list, and any scalar, is replaced by the overlay.

use serde_json::Value;

/// Merge `overlay` into `base`; the overlay wins on conflicts. `null` in the overlay is ignored.
pub fn merge_json(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (_, Value::Null) => {}
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => merge_json(existing, v),
                    None => {
                        if !v.is_null() {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(o)) if is_named_list(b) && is_named_list(o) => {
            for item in o {
                let name = &item["name"];
                match b.iter_mut().find(|x| &x["name"] == name) {
                    Some(existing) => merge_json(existing, item),
                    None => b.push(item.clone()),
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn is_named_list(items: &[Value]) -> bool {
    items
        .iter()
        .all(|i| i.get("name").is_some_and(Value::is_string))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn merge_table() {
        let cases = [
            (
                "scalars are replaced, other keys kept",
                json!({"a": 1, "b": 2}),
                json!({"a": 3}),
                json!({"a": 3, "b": 2}),
            ),
            (
                "containers merge by name, new ones are appended",
                json!({"containers": [{"name": "fjord", "image": "user", "env": [{"name": "A", "value": "1"}]}]}),
                json!({"containers": [{"name": "fjord", "image": "op", "env": [{"name": "B", "value": "2"}]}, {"name": "sidecar"}]}),
                json!({"containers": [{"name": "fjord", "image": "op", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]}, {"name": "sidecar"}]}),
            ),
            (
                "unnamed lists are replaced",
                json!({"tolerations": [{"key": "a"}]}),
                json!({"tolerations": [{"key": "b"}]}),
                json!({"tolerations": [{"key": "b"}]}),
            ),
            (
                "null in the overlay keeps the base",
                json!({"a": 1}),
                json!({"a": null, "b": null}),
                json!({"a": 1}),
            ),
        ];
        for (name, mut base, overlay, expected) in cases {
            merge_json(&mut base, &overlay);
            assert_eq!(base, expected, "{name}");
        }
    }
}
