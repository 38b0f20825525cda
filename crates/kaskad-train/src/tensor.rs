//! Weight tensors in the artifact: little-endian bytes in base64, so a
//! tensor's size on disk is its element size times its length (× 4/3) — an
//! `f32` weight takes 5.3 bytes, an `i8` one 1.3 — instead of the 10–25
//! characters of a decimal float. That keeps artifact sizes comparable
//! across precisions. Plain JSON arrays (artifacts written before) still read.
//!
//! Use as `#[serde(with = "crate::tensor")]` on a `Vec<f32>`, `Vec<f64>` or
//! `Vec<i8>` field; `crate::tensor::half` stores a `Vec<f32>` in IEEE half
//! precision and `crate::tensor::single` a `Vec<f64>` in `f32`, each tagged
//! (`"f16:…"`, `"f32:…"`) so that a full-width tensor written before still
//! reads.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::{DeserializeOwned, Error};
use serde::{Deserialize, Deserializer, Serializer};

/// An element type with a fixed little-endian encoding.
pub trait Element: Sized + Copy {
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
element!(f32, f64, i8, ::half::f16);

/// A narrower element a tensor of `Wide` is stored as; `TAG` names it in
/// the stored text.
pub trait Narrow<Wide>: Element {
    const TAG: &'static str;
    fn narrow(wide: Wide) -> Self;
    fn widen(self) -> Wide;
}

impl Narrow<f32> for ::half::f16 {
    const TAG: &'static str = "f16";
    fn narrow(wide: f32) -> Self {
        Self::from_f32(wide)
    }
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl Narrow<f64> for f32 {
    const TAG: &'static str = "f32";
    fn narrow(wide: f64) -> Self {
        wide as f32
    }
    fn widen(self) -> f64 {
        f64::from(self)
    }
}

fn encode<T: Element>(values: impl Iterator<Item = T>) -> String {
    let mut bytes = Vec::new();
    for v in values {
        v.put(&mut bytes);
    }
    STANDARD.encode(bytes)
}

fn decode<T: Element>(text: &str) -> Result<Vec<T>, String> {
    let bytes = STANDARD
        .decode(text.as_bytes())
        .map_err(|e| format!("tensor is not base64: {e}"))?;
    if bytes.len() % T::BYTES != 0 {
        return Err(format!(
            "tensor holds {} bytes, not a multiple of its element size {}",
            bytes.len(),
            T::BYTES
        ));
    }
    Ok(bytes.chunks_exact(T::BYTES).map(T::get).collect())
}

/// A tensor as stored: packed text, or a plain array from before.
#[derive(Deserialize)]
#[serde(untagged)]
enum Stored<T> {
    Packed(String),
    Plain(Vec<T>),
}

pub fn serialize<T: Element, S: Serializer>(
    values: &[T],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&encode(values.iter().copied()))
}

pub fn deserialize<'de, T: Element + DeserializeOwned, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<T>, D::Error> {
    match Stored::<T>::deserialize(deserializer)? {
        Stored::Plain(values) => Ok(values),
        Stored::Packed(text) => decode(&text).map_err(D::Error::custom),
    }
}

/// Stores `values` as `N`, rounded to nearest: the caller rounds them
/// first when what is stored must be what it scores with.
fn serialize_narrow<N: Narrow<W>, W: Copy, S: Serializer>(
    values: &[W],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let narrowed = encode(values.iter().map(|&v| N::narrow(v)));
    serializer.serialize_str(&format!("{}:{narrowed}", N::TAG))
}

fn deserialize_narrow<'de, N, W, D>(deserializer: D) -> Result<Vec<W>, D::Error>
where
    N: Narrow<W>,
    W: Element + DeserializeOwned,
    D: Deserializer<'de>,
{
    match Stored::<W>::deserialize(deserializer)? {
        Stored::Plain(values) => Ok(values),
        Stored::Packed(text) => match text.strip_prefix(N::TAG).and_then(|t| t.strip_prefix(':')) {
            Some(narrowed) => decode::<N>(narrowed).map(|v| v.into_iter().map(N::widen).collect()),
            None => decode::<W>(&text),
        }
        .map_err(D::Error::custom),
    }
}

/// A `Vec<f32>` stored in IEEE half precision (2 bytes a value).
pub mod half {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f32], serializer: S) -> Result<S::Ok, S::Error> {
        super::serialize_narrow::<::half::f16, _, _>(values, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f32>, D::Error> {
        super::deserialize_narrow::<::half::f16, _, _>(deserializer)
    }
}

/// A `Vec<f64>` stored in single precision (4 bytes a value).
pub mod single {
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(values: &[f64], serializer: S) -> Result<S::Ok, S::Error> {
        super::serialize_narrow::<f32, _, _>(values, serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<f64>, D::Error> {
        super::deserialize_narrow::<f32, _, _>(deserializer)
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

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Narrowed {
        #[serde(with = "super::half")]
        halves: Vec<f32>,
        #[serde(with = "super::single")]
        singles: Vec<f64>,
    }

    #[test]
    fn narrowed_tensors_round_trip_and_full_width_ones_still_read() {
        let narrowed = Narrowed {
            halves: vec![0.5, -1.25, 65504.0, 6.0e-8],
            singles: vec![0.1f32.into(), -3.0],
        };
        let json = serde_json::to_string(&narrowed).unwrap();
        assert!(json.contains(r#""halves":"f16:"#), "{json}");
        let back: Narrowed = serde_json::from_str(&json).unwrap();
        assert_eq!(back.singles, narrowed.singles);
        assert_eq!(back.halves[..3], narrowed.halves[..3]);
        // The smallest subnormal half, 2^-24, is the nearest to 6e-8.
        assert_eq!(back.halves[3], 2f32.powi(-24));
        // Values that do not fit are rounded, so 0.1 comes back as the
        // nearest half, not as itself.
        let rounded: Narrowed = serde_json::from_str(
            &serde_json::to_string(&Narrowed {
                halves: vec![0.1],
                singles: vec![],
            })
            .unwrap(),
        )
        .unwrap();
        assert!((rounded.halves[0] - 0.1).abs() < 1e-4 && rounded.halves[0] != 0.1);
        let full_width = r#"{"halves": "AADAPw==", "singles": [2.5]}"#;
        let old: Narrowed = serde_json::from_str(full_width).unwrap();
        assert_eq!((old.halves, old.singles), (vec![1.5], vec![2.5]));
    }
}
