//! The raw store's file format: one Parquet file per batch, written atomically.

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use kaskad_core::{Column, ColumnData, Frame};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use crate::CollectError;

fn parquet_error(path: &Path) -> impl FnOnce(String) -> CollectError + '_ {
    move |message| CollectError::Parquet {
        path: path.to_path_buf(),
        message,
    }
}

/// Writes `frame` to `path` through a temporary file in the same directory,
/// synced and renamed, so that readers see the whole file or none of it.
pub fn write_parquet(frame: &Frame, path: &Path) -> Result<(), CollectError> {
    let fields: Vec<Field> = frame
        .columns()
        .iter()
        .map(|c| {
            let ty = match c.data {
                ColumnData::Numeric(_) => DataType::Float64,
                ColumnData::Categorical(_) => DataType::Utf8,
            };
            Field::new(&c.name, ty, true)
        })
        .collect();
    let arrays: Vec<ArrayRef> = frame
        .columns()
        .iter()
        .map(|c| -> ArrayRef {
            match &c.data {
                // NaN is our missing marker; Parquet readers expect nulls.
                ColumnData::Numeric(v) => Arc::new(Float64Array::from(
                    v.iter()
                        .map(|x| (!x.is_nan()).then_some(*x))
                        .collect::<Vec<_>>(),
                )),
                ColumnData::Categorical(v) => Arc::new(StringArray::from(v.clone())),
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| parquet_error(path)(e.to_string()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    fs_err::create_dir_all(dir).map_err(CollectError::io(dir))?;
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(CollectError::io(&tmp))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut writer = ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| parquet_error(path)(e.to_string()))?;
    writer
        .write(&batch)
        .map_err(|e| parquet_error(path)(e.to_string()))?;
    let file = writer
        .into_inner()
        .map_err(|e| parquet_error(path)(e.to_string()))?;
    file.sync_all().map_err(CollectError::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(CollectError::io(path))?;
    Ok(())
}

/// Reads a Parquet file: floating and integer columns become numeric, string
/// columns categorical; other types are read through their text form.
pub fn read_parquet(path: &Path) -> Result<Frame, CollectError> {
    let file = std::fs::File::open(path).map_err(CollectError::io(path))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| parquet_error(path)(e.to_string()))?;
    let mut frames = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| parquet_error(path)(e.to_string()))?;
        let columns = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, array)| column_from_arrow(field.name(), array, path))
            .collect::<Result<Vec<_>, _>>()?;
        frames.push(Frame::new(columns)?);
    }
    Ok(Frame::vstack(&frames)?)
}

fn column_from_arrow(name: &str, array: &ArrayRef, path: &Path) -> Result<Column, CollectError> {
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float32Type, Float64Type, Int32Type, Int64Type};
    let numeric = |values: Vec<f64>| Ok(Column::numeric(name, values));
    let collect = |f: &dyn Fn(usize) -> f64| {
        (0..array.len())
            .map(|i| if array.is_null(i) { f64::NAN } else { f(i) })
            .collect()
    };
    match array.data_type() {
        DataType::Float64 => numeric(collect(&|i| array.as_primitive::<Float64Type>().value(i))),
        DataType::Float32 => numeric(collect(&|i| {
            f64::from(array.as_primitive::<Float32Type>().value(i))
        })),
        DataType::Int64 => numeric(collect(&|i| {
            array.as_primitive::<Int64Type>().value(i) as f64
        })),
        DataType::Int32 => numeric(collect(&|i| {
            f64::from(array.as_primitive::<Int32Type>().value(i))
        })),
        DataType::Utf8 => {
            let strings = array.as_string::<i32>();
            Ok(Column::categorical(
                name,
                (0..array.len())
                    .map(|i| (!array.is_null(i)).then(|| strings.value(i).to_string()))
                    .collect(),
            ))
        }
        DataType::LargeUtf8 => {
            let strings = array.as_string::<i64>();
            Ok(Column::categorical(
                name,
                (0..array.len())
                    .map(|i| (!array.is_null(i)).then(|| strings.value(i).to_string()))
                    .collect(),
            ))
        }
        other => Err(CollectError::Parquet {
            path: path.to_path_buf(),
            message: format!("column `{name}` has unsupported type {other}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_numbers_categories_and_missing_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.parquet");
        let f = Frame::new(vec![
            Column::numeric("x", vec![1.5, f64::NAN]),
            Column::categorical("c", vec![None, Some("rent".into())]),
        ])
        .unwrap();
        write_parquet(&f, &path).unwrap();
        let back = read_parquet(&path).unwrap();
        assert_eq!(back.column("c"), f.column("c"));
        let x = back.column("x").unwrap().as_numeric().unwrap();
        assert_eq!(x[0], 1.5);
        assert!(x[1].is_nan());
        assert!(!path.with_extension("parquet.tmp").exists());
    }
}
