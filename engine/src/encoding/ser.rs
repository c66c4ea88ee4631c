//! Writing values in the encoding described in the module docs.

use super::EncodingError;
use serde::ser::{self, Serialize};

/// Where encoded bytes go: a byte vector, or a consumer of the stream such as the key hash
/// ([`crate::keygroup::KeyHasher`]), which hashes a key's bytes without building them.
pub(crate) trait ByteSink {
    /// Appends the low `width` bytes (1 to 8) of `v`, little-endian; its higher bytes are zero.
    fn fixed(&mut self, v: u64, width: u32);
    /// Appends bytes.
    fn bytes(&mut self, bytes: &[u8]);
}

impl ByteSink for Vec<u8> {
    #[inline(always)]
    fn fixed(&mut self, v: u64, width: u32) {
        self.extend_from_slice(&v.to_le_bytes()[..width as usize]);
    }

    #[inline(always)]
    fn bytes(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Writes values into a [`ByteSink`].
pub(crate) struct Encoder<'o, S: ByteSink> {
    pub(crate) out: &'o mut S,
}

impl<S: ByteSink> Encoder<'_, S> {
    #[inline]
    fn len(&mut self, len: usize) {
        self.out.fixed(len as u64, 8);
    }

    #[inline]
    fn variant(&mut self, index: u32) {
        self.out.fixed(u64::from(index), 4);
    }
}

fn length_required() -> EncodingError {
    EncodingError::new("a sequence or map must know its length to be encoded")
}

/// Serializer methods of fixed-width values: their little-endian bytes of the given width.
macro_rules! fixed_width {
    ($($name:ident($t:ty) => $bits:expr, $width:expr;)*) => {$(
        #[inline]
        fn $name(self, v: $t) -> Result<(), EncodingError> {
            self.out.fixed(($bits)(v), $width);
            Ok(())
        }
    )*};
}

impl<S: ByteSink> ser::Serializer for &mut Encoder<'_, S> {
    type Ok = ();
    type Error = EncodingError;
    type SerializeSeq = Self;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = Self;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fixed_width! {
        serialize_bool(bool) => u64::from, 1;
        serialize_i8(i8) => |v: i8| u64::from(v as u8), 1;
        serialize_i16(i16) => |v: i16| u64::from(v as u16), 2;
        serialize_i32(i32) => |v: i32| u64::from(v as u32), 4;
        serialize_i64(i64) => |v: i64| v as u64, 8;
        serialize_u8(u8) => u64::from, 1;
        serialize_u16(u16) => u64::from, 2;
        serialize_u32(u32) => u64::from, 4;
        serialize_u64(u64) => |v: u64| v, 8;
        serialize_f32(f32) => |v: f32| u64::from(v.to_bits()), 4;
        serialize_f64(f64) => f64::to_bits, 8;
    }

    #[inline]
    fn serialize_i128(self, v: i128) -> Result<(), EncodingError> {
        self.serialize_u128(v as u128)
    }

    #[inline]
    fn serialize_u128(self, v: u128) -> Result<(), EncodingError> {
        self.out.fixed(v as u64, 8);
        self.out.fixed((v >> 64) as u64, 8);
        Ok(())
    }

    #[inline]
    fn serialize_char(self, v: char) -> Result<(), EncodingError> {
        let mut buf = [0u8; 4];
        self.out.bytes(v.encode_utf8(&mut buf).as_bytes());
        Ok(())
    }

    #[inline]
    fn serialize_str(self, v: &str) -> Result<(), EncodingError> {
        self.serialize_bytes(v.as_bytes())
    }

    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result<(), EncodingError> {
        self.len(v.len());
        self.out.bytes(v);
        Ok(())
    }

    #[inline]
    fn serialize_none(self) -> Result<(), EncodingError> {
        self.out.fixed(0, 1);
        Ok(())
    }

    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), EncodingError> {
        self.out.fixed(1, 1);
        value.serialize(self)
    }

    #[inline]
    fn serialize_unit(self) -> Result<(), EncodingError> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), EncodingError> {
        Ok(())
    }

    #[inline]
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), EncodingError> {
        self.variant(index);
        Ok(())
    }

    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), EncodingError> {
        value.serialize(self)
    }

    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), EncodingError> {
        self.variant(index);
        value.serialize(self)
    }

    #[inline]
    fn serialize_seq(self, len: Option<usize>) -> Result<Self, EncodingError> {
        self.len(len.ok_or_else(length_required)?);
        Ok(self)
    }

    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self, EncodingError> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self, EncodingError> {
        Ok(self)
    }

    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, EncodingError> {
        self.variant(index);
        Ok(self)
    }

    #[inline]
    fn serialize_map(self, len: Option<usize>) -> Result<Self, EncodingError> {
        self.len(len.ok_or_else(length_required)?);
        Ok(self)
    }

    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, EncodingError> {
        Ok(self)
    }

    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, EncodingError> {
        self.variant(index);
        Ok(self)
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The compound serializers: each element, field or entry is written in turn with nothing
/// around it (the length, where there is one, was written when the compound began).
macro_rules! compound {
    ($($trait:ident::$method:ident($($name:ident),*);)*) => {$(
        impl<S: ByteSink> ser::$trait for &mut Encoder<'_, S> {
            type Ok = ();
            type Error = EncodingError;

            #[inline]
            fn $method<T: Serialize + ?Sized>(
                &mut self,
                $($name: &'static str,)*
                value: &T,
            ) -> Result<(), EncodingError> {
                value.serialize(&mut **self)
            }

            #[inline]
            fn end(self) -> Result<(), EncodingError> {
                Ok(())
            }
        }
    )*};
}

compound! {
    SerializeSeq::serialize_element();
    SerializeTuple::serialize_element();
    SerializeTupleStruct::serialize_field();
    SerializeTupleVariant::serialize_field();
    SerializeStruct::serialize_field(_key);
    SerializeStructVariant::serialize_field(_key);
}

impl<S: ByteSink> ser::SerializeMap for &mut Encoder<'_, S> {
    type Ok = ();
    type Error = EncodingError;

    #[inline]
    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), EncodingError> {
        key.serialize(&mut **self)
    }

    #[inline]
    fn serialize_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), EncodingError> {
        value.serialize(&mut **self)
    }

    #[inline]
    fn end(self) -> Result<(), EncodingError> {
        Ok(())
    }
}
