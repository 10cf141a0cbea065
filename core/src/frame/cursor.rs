//! Checked little-endian cursors: the only code in the codec that touches
//! byte offsets. Every read checks the remaining length first and returns
//! `FrameError::Truncated` instead of indexing past the slice; every write
//! goes into a buffer whose size was computed exactly beforehand
//! (`Frame::encoded_len`), and a short buffer is an error, never a panic.

use super::FrameError;

/// Reads from a byte slice; never indexes out of bounds.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let rest = &self.bytes[self.pos..];
        match rest.get(..n) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => Err(FrameError::Truncated { need: self.pos.saturating_add(n), have: self.bytes.len() }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.array::<1>()?[0])
    }

    /// `n` little-endian `f32`s, with one bounds check for all of them (a
    /// tensor of 4,096 elements decodes in a few microseconds, not tens).
    pub(crate) fn f32s(&mut self, n: usize) -> Result<Vec<f32>, FrameError> {
        let bytes = n.checked_mul(4).ok_or(FrameError::TooLarge { bytes: usize::MAX, max: self.remaining() })?;
        let s = self.take(bytes)?;
        let mut v = vec![0f32; n];
        #[cfg(target_endian = "little")]
        // SAFETY: `s` holds exactly `n * 4` bytes (`take`), `v` owns `n`
        // f32s (`n * 4` bytes, written bytewise so alignment does not
        // matter); the two do not overlap (`v` is fresh), and every bit
        // pattern is a valid f32. On a little-endian host these are the
        // bytes `f32::from_le_bytes` would read.
        unsafe {
            core::ptr::copy_nonoverlapping(s.as_ptr(), v.as_mut_ptr().cast::<u8>(), bytes)
        };
        #[cfg(not(target_endian = "little"))]
        for (x, c) in v.iter_mut().zip(s.chunks_exact(4)) {
            *x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        Ok(v)
    }
    pub(crate) fn u16(&mut self) -> Result<u16, FrameError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, FrameError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A `u64` that must fit a `usize` (always true on 64-bit hosts).
    pub(crate) fn usize64(&mut self, what: &'static str) -> Result<usize, FrameError> {
        usize::try_from(self.u64()?).map_err(|_| FrameError::InvalidField(what))
    }

    /// A bool encoded as exactly 0 or 1.
    pub(crate) fn bool(&mut self, what: &'static str) -> Result<bool, FrameError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(FrameError::InvalidField(what)),
        }
    }

    /// A count of `elem_bytes`-sized elements: rejected unless that many
    /// elements could still follow, so no allocation exceeds the input.
    pub(crate) fn count(&mut self, elem_bytes: usize) -> Result<usize, FrameError> {
        let n = self.u32()? as usize;
        let need = n.saturating_mul(elem_bytes);
        if need > self.remaining() {
            return Err(FrameError::Truncated { need: self.pos.saturating_add(need), have: self.bytes.len() });
        }
        Ok(n)
    }

    /// A `u16`-length-prefixed UTF-8 string of at most `max` bytes.
    pub(crate) fn string(&mut self, max: usize) -> Result<String, FrameError> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(FrameError::TooLarge { bytes: n, max });
        }
        let s = self.take(n)?;
        core::str::from_utf8(s).map(str::to_owned).map_err(|_| FrameError::InvalidUtf8)
    }

    /// Fails with `TrailingBytes` unless everything was consumed.
    pub(crate) fn finish(&self) -> Result<(), FrameError> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(FrameError::TrailingBytes { extra }),
        }
    }
}

/// Writes into a pre-sized buffer; a short buffer is an error.
#[derive(Debug)]
pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    pub(crate) fn written(&self) -> usize {
        self.pos
    }

    pub(crate) fn put(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        let end = self.pos.saturating_add(bytes.len());
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
                Ok(())
            }
            None => Err(FrameError::TooLarge { bytes: end, max: self.buf.len() }),
        }
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), FrameError> {
        self.put(&[v])
    }

    /// `xs` as little-endian `f32`s, with one bounds check for all of them
    /// (the same bytes as one `u32(x.to_bits())` each).
    pub(crate) fn f32s(&mut self, xs: &[f32]) -> Result<(), FrameError> {
        let end = self.pos.saturating_add(xs.len().saturating_mul(4));
        match self.buf.get_mut(self.pos..end) {
            Some(dst) => {
                debug_assert_eq!(dst.len(), xs.len() * 4);
                #[cfg(target_endian = "little")]
                {
                    // SAFETY: `xs` is `xs.len() * 4` initialised bytes (f32
                    // has no padding) that live as long as this borrow; on a
                    // little-endian host they are `f32::to_le_bytes` of each.
                    let src = unsafe { core::slice::from_raw_parts(xs.as_ptr().cast::<u8>(), dst.len()) };
                    dst.copy_from_slice(src);
                }
                #[cfg(not(target_endian = "little"))]
                for (d, x) in dst.chunks_exact_mut(4).zip(xs) {
                    d.copy_from_slice(&x.to_le_bytes());
                }
                self.pos = end;
                Ok(())
            }
            None => Err(FrameError::TooLarge { bytes: end, max: self.buf.len() }),
        }
    }
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), FrameError> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> Result<(), FrameError> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> Result<(), FrameError> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn bool(&mut self, v: bool) -> Result<(), FrameError> {
        self.u8(u8::from(v))
    }
    pub(crate) fn usize64(&mut self, v: usize) -> Result<(), FrameError> {
        self.u64(v as u64)
    }

    /// A count (`u32`); a count that does not fit is `TooLarge`.
    pub(crate) fn count(&mut self, n: usize) -> Result<(), FrameError> {
        let v = u32::try_from(n).map_err(|_| FrameError::TooLarge { bytes: n, max: u32::MAX as usize })?;
        self.u32(v)
    }

    /// A `u16`-length-prefixed string; the caller has already bounded it.
    pub(crate) fn string(&mut self, s: &str, max: usize) -> Result<(), FrameError> {
        if s.len() > max || s.len() > u16::MAX as usize {
            return Err(FrameError::TooLarge { bytes: s.len(), max });
        }
        self.u16(s.len() as u16)?;
        self.put(s.as_bytes())
    }
}
