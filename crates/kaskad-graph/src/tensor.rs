//! Dense tensors of the element types the evaluated graphs use, with
//! NumPy-style broadcasting for the elementwise operators.

use crate::proto::{TensorProto, data_type};

/// The values of a tensor, row-major.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Float(Vec<f32>),
    Double(Vec<f64>),
    /// Every integer type (int8 … int64, uint8): the graphs these models
    /// make use integers for indices, shapes and labels only.
    Int64(Vec<i64>),
    Bool(Vec<bool>),
    Str(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Tensor {
    pub fn new(shape: Vec<usize>, data: Data) -> Tensor {
        Tensor { shape, data }
    }

    pub fn floats(shape: Vec<usize>, values: Vec<f32>) -> Tensor {
        Tensor::new(shape, Data::Float(values))
    }

    pub fn len(&self) -> usize {
        match &self.data {
            Data::Float(v) => v.len(),
            Data::Double(v) => v.len(),
            Data::Int64(v) => v.len(),
            Data::Bool(v) => v.len(),
            Data::Str(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn type_name(&self) -> &'static str {
        match &self.data {
            Data::Float(_) => "float",
            Data::Double(_) => "double",
            Data::Int64(_) => "int64",
            Data::Bool(_) => "bool",
            Data::Str(_) => "string",
        }
    }

    /// Rows and columns when read as a matrix: the last axis is the
    /// columns, every other axis the rows (a vector is one row), as the
    /// ONNX-ML operators read their input.
    pub fn matrix(&self) -> (usize, usize) {
        match self.shape.split_last() {
            None => (1, 1),
            Some((&cols, [])) => (1, cols),
            Some((&cols, rows)) => (rows.iter().product(), cols),
        }
    }

    /// Numeric values as `f64` (exactly, for float and double).
    pub fn to_f64(&self) -> Result<Vec<f64>, String> {
        Ok(match &self.data {
            Data::Float(v) => v.iter().map(|&x| f64::from(x)).collect(),
            Data::Double(v) => v.clone(),
            Data::Int64(v) => v.iter().map(|&x| x as f64).collect(),
            Data::Bool(v) => v.iter().map(|&x| f64::from(u8::from(x))).collect(),
            Data::Str(_) => return Err("expected numbers, got strings".into()),
        })
    }

    /// Numeric values as `f32`, as onnxruntime's float kernels read them.
    pub fn to_f32(&self) -> Result<Vec<f32>, String> {
        Ok(match &self.data {
            Data::Float(v) => v.clone(),
            Data::Double(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Int64(v) => v.iter().map(|&x| x as f32).collect(),
            Data::Bool(v) => v.iter().map(|&x| f32::from(u8::from(x))).collect(),
            Data::Str(_) => return Err("expected numbers, got strings".into()),
        })
    }

    pub fn ints(&self) -> Result<&[i64], String> {
        match &self.data {
            Data::Int64(v) => Ok(v),
            _ => Err(format!("expected int64 values, got {}", self.type_name())),
        }
    }

    /// The values of an initializer or tensor attribute.
    pub fn from_proto(t: &TensorProto) -> Result<Tensor, String> {
        if t.data_location == 1 {
            return Err("values stored in an external file are not supported".into());
        }
        let shape: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d).map_err(|_| format!("negative dimension {d}")))
            .collect::<Result<_, _>>()?;
        let raw = &t.raw_data;
        let data = match t.data_type {
            data_type::FLOAT if raw.is_empty() => Data::Float(t.float_data.clone()),
            data_type::FLOAT => Data::Float(le_chunks(raw, f32::from_le_bytes)?),
            data_type::DOUBLE if raw.is_empty() => Data::Double(t.double_data.clone()),
            data_type::DOUBLE => Data::Double(le_chunks(raw, f64::from_le_bytes)?),
            data_type::INT64 if raw.is_empty() => Data::Int64(t.int64_data.clone()),
            data_type::INT64 => Data::Int64(le_chunks(raw, i64::from_le_bytes)?),
            data_type::INT32 if raw.is_empty() => {
                Data::Int64(t.int32_data.iter().map(|&x| x.into()).collect())
            }
            data_type::INT32 => Data::Int64(
                le_chunks(raw, i32::from_le_bytes)?
                    .into_iter()
                    .map(i64::from)
                    .collect(),
            ),
            data_type::INT8 | data_type::UINT8 if raw.is_empty() => {
                Data::Int64(t.int32_data.iter().map(|&x| x.into()).collect())
            }
            data_type::INT8 => Data::Int64(raw.iter().map(|&b| i64::from(b as i8)).collect()),
            data_type::UINT8 => Data::Int64(raw.iter().map(|&b| i64::from(b)).collect()),
            data_type::BOOL if raw.is_empty() => {
                Data::Bool(t.int32_data.iter().map(|&x| x != 0).collect())
            }
            data_type::BOOL => Data::Bool(raw.iter().map(|&b| b != 0).collect()),
            data_type::STRING => Data::Str(
                t.string_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect(),
            ),
            other => return Err(format!("element type {other} is not supported")),
        };
        let tensor = Tensor::new(shape, data);
        let expected: usize = tensor.shape.iter().product();
        if tensor.len() != expected {
            return Err(format!(
                "{} values for shape {:?}",
                tensor.len(),
                tensor.shape
            ));
        }
        Ok(tensor)
    }
}

fn le_chunks<T, const N: usize>(raw: &[u8], read: fn([u8; N]) -> T) -> Result<Vec<T>, String> {
    if !raw.len().is_multiple_of(N) {
        return Err(format!(
            "{} raw bytes are not a whole number of {N}-byte values",
            raw.len()
        ));
    }
    Ok(raw
        .chunks_exact(N)
        .map(|c| read(c.try_into().expect("chunks_exact gives N bytes")))
        .collect())
}

/// The shape two operands broadcast to (NumPy rules).
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let rank = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| (i + s.len()).checked_sub(rank).map_or(1, |j| s[j]);
    (0..rank)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// How an operand of `shape` lies in an `out`-shaped result.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Layout {
    /// As many elements as the result: read in order.
    Full,
    /// One value for every element.
    Scalar,
    /// One row repeated down the rows (a bias): element `i % width`.
    Row,
    /// One value per row, repeated across it: element `i / width`.
    Column,
    /// Anything else, read through [`broadcast_index`].
    Other,
}

fn layout(shape: &[usize], out: &[usize]) -> Layout {
    let total: usize = out.iter().product();
    let len: usize = shape.iter().product();
    if len == total {
        return Layout::Full;
    }
    if len == 1 {
        return Layout::Scalar;
    }
    let Some((&last, leading)) = shape.split_last() else {
        return Layout::Other;
    };
    let (&width, out_leading) = out.split_last().expect("out has an axis if shape has one");
    if last == width && leading.iter().all(|&d| d == 1) {
        Layout::Row
    } else if last == 1 && leading == out_leading {
        Layout::Column
    } else {
        Layout::Other
    }
}

/// For every element of `out`, the index of the element of an operand of
/// `shape` that broadcasts to it.
pub fn broadcast_index(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let total: usize = out.iter().product();
    let width = out.last().copied().unwrap_or(1).max(1);
    match layout(shape, out) {
        Layout::Full => return (0..total).collect(),
        Layout::Scalar => return vec![0; total],
        Layout::Row => return (0..total).map(|i| i % width).collect(),
        Layout::Column => return (0..total).map(|i| i / width).collect(),
        Layout::Other => {}
    }
    let offset = out.len() - shape.len();
    // Strides of the operand, 0 along the axes it is broadcast over.
    let mut strides = vec![0; out.len()];
    let mut stride = 1;
    for i in (0..shape.len()).rev() {
        strides[i + offset] = if shape[i] == 1 { 0 } else { stride };
        stride *= shape[i];
    }
    let mut index = Vec::with_capacity(total);
    let mut counter = vec![0; out.len()];
    for _ in 0..total {
        index.push(counter.iter().zip(&strides).map(|(c, s)| c * s).sum());
        for axis in (0..out.len()).rev() {
            counter[axis] += 1;
            if counter[axis] < out[axis] {
                break;
            }
            counter[axis] = 0;
        }
    }
    index
}

/// `f` applied elementwise to two broadcast operands; the common layouts
/// (same shape, a scalar, a row or a column against a full operand) run
/// as plain loops, without index vectors.
pub fn zip_broadcast<T: Copy>(
    (a, a_shape): (&[T], &[usize]),
    (b, b_shape): (&[T], &[usize]),
    f: impl Fn(T, T) -> T,
) -> Result<(Vec<usize>, Vec<T>), String> {
    let shape = broadcast_shape(a_shape, b_shape)?;
    let width = shape.last().copied().unwrap_or(1).max(1);
    let values = match (layout(a_shape, &shape), layout(b_shape, &shape)) {
        (Layout::Full, Layout::Full) => a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect(),
        (Layout::Full, Layout::Scalar) => a.iter().map(|&x| f(x, b[0])).collect(),
        (Layout::Scalar, Layout::Full) => b.iter().map(|&y| f(a[0], y)).collect(),
        (Layout::Full, Layout::Row) => a
            .chunks(width)
            .flat_map(|r| r.iter().zip(b).map(|(&x, &y)| f(x, y)))
            .collect(),
        (Layout::Row, Layout::Full) => b
            .chunks(width)
            .flat_map(|r| r.iter().zip(a).map(|(&y, &x)| f(x, y)))
            .collect(),
        (Layout::Full, Layout::Column) => a
            .chunks(width)
            .zip(b)
            .flat_map(|(r, &y)| r.iter().map(move |&x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect(),
        (Layout::Column, Layout::Full) => b
            .chunks(width)
            .zip(a)
            .flat_map(|(r, &x)| r.iter().map(move |&y| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect(),
        _ => {
            let (ia, ib) = (
                broadcast_index(a_shape, &shape),
                broadcast_index(b_shape, &shape),
            );
            ia.iter().zip(&ib).map(|(&i, &j)| f(a[i], b[j])).collect()
        }
    };
    Ok((shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let (shape, v) = zip_broadcast(
            (&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0][..], &[2, 3][..]),
            (&[10.0, 20.0, 30.0][..], &[1, 3][..]),
            |x, y| x + y,
        )
        .unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(v, vec![11.0, 22.0, 33.0, 14.0, 25.0, 36.0]);
        let (shape, v) = zip_broadcast(
            (&[1.0, 2.0][..], &[2, 1][..]),
            (&[10.0, 20.0, 30.0][..], &[3][..]),
            |x, y| x * y,
        )
        .unwrap();
        assert_eq!(shape, vec![2, 3]);
        assert_eq!(v, vec![10.0, 20.0, 30.0, 20.0, 40.0, 60.0]);
        assert!(broadcast_shape(&[2, 3], &[2]).is_err());
        // Neither a row nor a column: the general walk.
        let (shape, v) = zip_broadcast(
            (&[1.0, 2.0, 3.0, 4.0][..], &[2, 1, 2][..]),
            (&[10.0, 20.0, 30.0][..], &[1, 3, 1][..]),
            |x, y| x + y,
        )
        .unwrap();
        assert_eq!(shape, vec![2, 3, 2]);
        assert_eq!(
            v,
            vec![
                11.0, 12.0, 21.0, 22.0, 31.0, 32.0, 13.0, 14.0, 23.0, 24.0, 33.0, 34.0
            ]
        );
    }

    #[test]
    fn raw_data_reads_little_endian() {
        let t = TensorProto {
            dims: vec![2],
            data_type: data_type::FLOAT,
            raw_data: [1.5f32, -2.0]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect(),
            ..TensorProto::default()
        };
        assert_eq!(
            Tensor::from_proto(&t).unwrap().data,
            Data::Float(vec![1.5, -2.0])
        );
        let short = TensorProto {
            raw_data: vec![0; 7],
            ..t
        };
        assert!(Tensor::from_proto(&short).is_err());
    }
}
