//! Weight tensors in the artifact: little-endian bytes in base64, so a
//! tensor's size on disk is its element size times its length (× 4/3) — an
//! `f32` weight takes 5.3 bytes, an `i8` one 1.3 — instead of the 10–25
//! characters of a decimal float. That keeps artifact sizes comparable
//! across precisions. Plain JSON arrays (artifacts written before) still read.
//!
//! Use as `#[serde(with = "crate::tensor")]` on a `Vec<f32>`, `Vec<f64>` or
//! `Vec<i8>` field.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error;
use serde::{Deserialize, Deserializer, Serializer};

/// An element type with a fixed little-endian encoding.
pub trait Element: Sized + Copy + for<'de> Deserialize<'de> {
    const BYTES: usize;
    fn put(self, out: &mut Vec<u8>);
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($($t:ty),*) => {$(
        impl Element for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(bytes: &[u8]) -> Self {
                let mut array = [0u8; std::mem::size_of::<$t>()];
                array.copy_from_slice(bytes);
                <$t>::from_le_bytes(array)
            }
        }
    )*};
}
element!(f32, f64, i8);

pub fn serialize<T: Element, S: Serializer>(
    values: &[T],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let mut bytes = Vec::with_capacity(values.len() * T::BYTES);
    for &v in values {
        v.put(&mut bytes);
    }
    serializer.serialize_str(&STANDARD.encode(bytes))
}

pub fn deserialize<'de, T: Element, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored<T> {
        Packed(String),
        Plain(Vec<T>),
    }
    match Stored::<T>::deserialize(deserializer)? {
        Stored::Plain(values) => Ok(values),
        Stored::Packed(text) => {
            let bytes = STANDARD
                .decode(text.as_bytes())
                .map_err(|e| D::Error::custom(format!("tensor is not base64: {e}")))?;
            if bytes.len() % T::BYTES != 0 {
                return Err(D::Error::custom(format!(
                    "tensor holds {} bytes, not a multiple of its element size {}",
                    bytes.len(),
                    T::BYTES
                )));
            }
            Ok(bytes.chunks_exact(T::BYTES).map(T::get).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        floats: Vec<f32>,
        #[serde(with = "super")]
        bytes: Vec<i8>,
    }

    #[test]
    fn tensors_round_trip_and_old_arrays_still_read() {
        let holder = Holder {
            floats: vec![1.5, -0.0, f32::MIN_POSITIVE, 3.0e7],
            bytes: vec![-127, 0, 5, 127],
        };
        let json = serde_json::to_string(&holder).unwrap();
        assert!(json.len() < 60, "{json}");
        assert_eq!(serde_json::from_str::<Holder>(&json).unwrap(), holder);
        let old: Holder = serde_json::from_str(r#"{"floats": [1.5, 2], "bytes": [-1]}"#).unwrap();
        assert_eq!(old.floats, [1.5, 2.0]);
        let error = serde_json::from_str::<Holder>(r#"{"floats": "AAA=", "bytes": []}"#)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a multiple"), "{error}");
    }
}
