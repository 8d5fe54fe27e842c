"""The JSON writers, compiled: answers written as the bytes ``orjson.dumps`` gives, without objects.

At a low θ a prediction has thousands of future_potentials entries, and the top predictions
have 34 keys each; building those Python objects, serialising and freeing them costs more than
the prediction itself. These kernels write the same bytes directly: the future_potentials list
(``_futures_json``) and the top prediction objects (``predictions_json``, a ``JSONList``), from
the index's arrays, each symbol's JSON text (cached by the index) and the floats as orjson
spells them (one ``orjson.dumps`` of a float array gives every number's text).
"""

from __future__ import annotations

import numpy as np
import orjson

from .. import metrics as mx
from ..types import JSONList
from . import compiled
from .compiled import jit as _jit
from .matching import _top_blocks

__all__ = ["float_texts", "predictions_json"]

_I64 = np.int64


def _text(raw: bytes) -> np.ndarray:
    return np.array(list(raw), np.uint8)

# The constant parts of a future_potentials entry, as orjson writes them (compact), one text
# with _WORD bytes of padding (see _copy): '{"future":' is _J[0:10], and so on.
_J_PARTS = (b'{"future":', b',"aggregate_potential":', b',"supporting_patterns":',
            b',"total_weighted_frequency":')
_J = _text(b"".join(_J_PARTS) + bytes(8))
_J0, _J1, _J2, _J3, _J4 = np.cumsum([0] + [len(x) for x in _J_PARTS]).tolist()
_WORD = 8  # bytes moved at a time by _copy: sources and outputs keep this much slack

if compiled.COMPILED:
    from llvmlite import ir as _ir
    from numba import types as _nt
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _move_word(typingctx, dst, at, src, frm):
        """Copy the 8 bytes src[frm:frm + 8] to dst[at:at + 8], unaligned (no bounds check)."""
        def codegen(context, builder, signature, args):
            dst_v, at_v, src_v, frm_v = args
            word = _ir.IntType(64).as_pointer()
            d = context.make_array(signature.args[0])(context, builder, dst_v)
            s = context.make_array(signature.args[2])(context, builder, src_v)
            value = builder.load(builder.bitcast(builder.gep(s.data, [frm_v]), word), align=1)
            builder.store(value, builder.bitcast(builder.gep(d.data, [at_v]), word), align=1)
            return context.get_dummy_value()
        return _nt.void(dst, at, src, frm), codegen
else:  # pragma: no cover - the kernels stay plain Python functions that nothing calls
    def _move_word(dst, at, src, frm):
        dst[at: at + 8] = src[frm: frm + 8]


@_jit
def _copy(out, k, src, lo, hi):
    """Copy src[lo:hi] into out at k, 8 bytes at a time; return the position after it.

    Reads up to 7 bytes past ``hi`` and writes up to 7 past the copy: ``src`` must extend that
    far (its texts are padded) and ``out`` must have that slack; the extra bytes written are
    overwritten by what follows, or cut off at the end.
    """
    t = lo
    while t < hi:
        _move_word(out, k + (t - lo), src, t)
        t += 8
    return k + (hi - lo)


@_jit
def _distinct_floats(bits):
    """Return (where each distinct value first appears, each value's index among the distinct).

    Distinct by bits (``bits``: the float64 values viewed as uint64): a value and its text are
    one to one, so each distinct text is written once by orjson (aggregates and weighted
    frequencies repeat a lot: ~150 texts for 6,000 entries).
    """
    n = bits.shape[0]
    size = 16
    while size < 2 * n:
        size *= 2
    table = np.full(size, -1, _I64)
    mask = np.uint64(size - 1)
    first = np.empty(n, _I64)
    index = np.empty(n, _I64)
    nd = 0
    for u in range(n):
        b = bits[u]
        slot = (((b ^ (b >> np.uint64(29))) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(20)) & mask
        while table[slot] >= 0 and bits[first[table[slot]]] != b:
            slot = (slot + np.uint64(1)) & mask
        d = table[slot]
        if d < 0:
            d = nd
            table[slot] = d
            first[d] = u
            nd += 1
        index[u] = d
    return first[:nd], index


def float_texts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (orjson's text of the distinct values, padded, where each starts, each value's
    index among them): value u is text[s[i]:s[i + 1] - 1] with i = index[u]."""
    values = np.ascontiguousarray(values, np.float64)
    first, index = _distinct_floats(values.view(np.uint64))
    raw = orjson.dumps(values[first], option=orjson.OPT_SERIALIZE_NUMPY)
    text = np.zeros(len(raw) + _WORD, np.uint8)
    text[: len(raw)] = np.frombuffer(raw, np.uint8)
    starts = np.empty(first.shape[0] + 1, _I64)  # after the '[' and after each ','
    starts[0] = 1
    starts[1:-1] = np.flatnonzero(text[: len(raw)] == 44) + 1
    starts[-1] = len(raw)
    return text, starts, index


@_jit
def _put(out, k, src, lo, hi):
    """Copy src[lo:hi] into out at k; return the position after it."""
    for t in range(lo, hi):
        out[k] = src[t]
        k += 1
    return k

@_jit
def _int_size(v):
    """Return the number of decimal digits of v >= 0."""
    size = 1
    while v >= 10:
        v //= 10
        size += 1
    return size

@_jit
def _next_number(text, k, out, at):
    """Copy the number of an orjson array ``text`` that starts at k (after '[' or ','); return
    (the position of the ',' or ']' that ends it, the position after it in ``out``)."""
    while text[k] != 44 and text[k] != 93:  # ',' and ']'
        out[at] = text[k]
        at += 1
        k += 1
    return k, at

@_jit
def _open_list(out, k, after_item):
    """Write the '[' opening a list that is an item of a JSON list (after a ',' if not first)."""
    if after_item:
        out[k] = 44
        k += 1
    out[k] = 91
    return k + 1

@_jit
def _close_list(out, k):
    out[k] = 93  # ']'
    return k + 1

@_jit
def _put_item(out, k, first, src, lo, hi):
    """Write src[lo:hi] as an item of a JSON list: after a ',' unless it is the first."""
    if not first:
        out[k] = 44
        k += 1
    return _put(out, k, src, lo, hi)

@_jit
def _put_events(out, k, p, lo_ev, hi_ev, flat, pstart, ebstart, ebounds, sym_json, sym_off):
    """Write events[lo_ev:hi_ev] of pattern p as a JSON list of lists of strings."""
    a = pstart[p]
    b0 = ebstart[p]
    out[k] = 91
    k += 1
    for ev in range(lo_ev, hi_ev):
        k = _open_list(out, k, ev > lo_ev)
        lo = a + ebounds[b0 + ev]
        hi = a + ebounds[b0 + ev + 1]
        for t in range(lo, hi):
            if t > lo:
                out[k] = 44
                k += 1
            x = flat[t]
            k = _put(out, k, sym_json, sym_off[x], sym_off[x + 1])
        out[k] = 93
        k += 1
    out[k] = 93
    return k + 1

@_jit
def _copy_events(out, k, p, lo_ev, hi_ev, flat, pstart, ebstart, ebounds, sym_json, sym_off):
    """``_put_events`` with ``_copy``: ``sym_json`` padded, ``out`` with slack."""
    a = pstart[p]
    b0 = ebstart[p]
    out[k] = 91
    k += 1
    for ev in range(lo_ev, hi_ev):
        if ev > lo_ev:
            out[k] = 44
            k += 1
        out[k] = 91
        k += 1
        lo = a + ebounds[b0 + ev]
        hi = a + ebounds[b0 + ev + 1]
        for t in range(lo, hi):
            if t > lo:
                out[k] = 44
                k += 1
            x = flat[t]
            k = _copy(out, k, sym_json, sym_off[x], sym_off[x + 1])
        out[k] = 93
        k += 1
    out[k] = 93
    return k + 1

# Above this longest symbol text the output is sized exactly (a pass over every symbol);
# at or below it, from the symbol and event counts alone, which over-allocates at most ~10x.
_SIZE_BY_COUNT_MAX_LEN = 64


@_jit
def _futures_json(ps, starts, flat, pstart, ebstart, ebounds, sym_json, sym_off, sym_max,
                  counts, agg_text, agg_at, agg_of, w_text, w_at, w_of):
    """Write ``orjson.dumps`` of the future_potentials list, byte for byte, as uint8.

    Entry u is the future events[starts[u]:] of pattern ps[u] (each symbol's JSON string
    taken from ``sym_json[sym_off[x]:sym_off[x + 1]]``, at most ``sym_max`` bytes), its count
    as an int, and two floats as orjson writes them: number ``agg_of[u]`` of ``agg_text`` and
    ``w_of[u]`` of ``w_text`` (texts and starts from ``float_texts``), so every float has
    exactly orjson's text. Counts are positive. ``sym_json`` and the float texts have
    ``_WORD`` bytes of padding (``_copy``). The output is sized from the entries' symbol and
    event counts (every symbol taken at ``sym_max`` bytes) unless symbols are long, then by a
    pass over every symbol.
    """
    ng = ps.shape[0]
    # The list's brackets and commas, the keys and braces, at most 19 digits per count, the
    # floats' text, and the slack of _copy.
    size = 2 + _WORD + ng * (_J4 + 2 + 19)
    exact = sym_max > _SIZE_BY_COUNT_MAX_LEN
    for u in range(ng):
        i = agg_of[u]
        j = w_of[u]
        size += agg_at[i + 1] - agg_at[i] + w_at[j + 1] - w_at[j]
        p = ps[u]
        a = pstart[p]
        b0 = ebstart[p]
        m = ebstart[p + 1] - b0 - 1
        size += 2 + max(m - starts[u], 1)  # [ , ... ] and each event's [ ] (or the empty one)
        if not exact:
            nsym = ebounds[b0 + m] - ebounds[b0 + starts[u]]
            size += 2 * (m - starts[u]) + nsym * (sym_max + 1)
            continue
        for ev in range(starts[u], m):
            lo = a + ebounds[b0 + ev]
            hi = a + ebounds[b0 + ev + 1]
            size += 2 + max(hi - lo, 1)
            for t in range(lo, hi):
                x = flat[t]
                size += sym_off[x + 1] - sym_off[x]
    out = np.empty(size, np.uint8)
    k = 0
    out[k] = 91  # '['
    k += 1
    for u in range(ng):
        if u:
            out[k] = 44
            k += 1
        k = _copy(out, k, _J, _J0, _J1)
        p = ps[u]
        k = _copy_events(out, k, p, starts[u], ebstart[p + 1] - ebstart[p] - 1, flat, pstart,
                         ebstart, ebounds, sym_json, sym_off)
        k = _copy(out, k, _J, _J1, _J2)
        i = agg_of[u]
        k = _copy(out, k, agg_text, agg_at[i], agg_at[i + 1] - 1)
        k = _copy(out, k, _J, _J2, _J3)
        v = counts[u]
        digits = _int_size(v)
        for t in range(digits - 1, -1, -1):
            out[k + t] = 48 + v % 10
            v //= 10
        k += digits
        k = _copy(out, k, _J, _J3, _J4)
        i = w_of[u]
        k = _copy(out, k, w_text, w_at[i], w_at[i + 1] - 1)
        out[k] = 125  # '}'
        k += 1
    out[k] = 93
    return out[: k + 1]

# The keys of a prediction object after its head ("type", "name", "frequency", "emotives",
# written by Python), as orjson writes them; the floats' keys in column order of the
# numbers matrix given to _predictions_json.
_P_LISTS = (b',"matches":', b',"past":', b',"present":', b',"missing":', b',"extras":')
_P_FLOATS = (b',"potential":', b',"evidence":', b',"similarity":', b',"fragmentation":',
             b',"snr":', b',"confluence":', b',"predictive_information":',
             b',"sequence":', b',"future":',  # two event lists, between the 7th and 8th float
             b',"confidence":', b',"entropy":', b',"normalized_entropy":',
             b',"global_normalized_entropy":', b',"itfdf_similarity":', b',"tfidf_score":',
             b',"pattern_probability":', b',"weighted_strength":', b',"bayesian_posterior":',
             b',"bayesian_prior":', b',"bayesian_likelihood":')
_P_KEYS = _text(b"".join(_P_LISTS + _P_FLOATS))
# The keys kato-3.10.md adds after bayesian_likelihood, as the compiled writer always has them:
# no fuzzy threshold and no affinity emotive (a prediction call with either is built from
# Python objects, see PatternIndex._predict_direct).
_P_TAIL = _text(b',"anomalies":[],"weighted_similarity":null,"weighted_evidence":null,'
                b'"weighted_confidence":null,"weighted_snr":null')
_P_KOFF = np.cumsum(np.array([0] + [len(x) for x in _P_LISTS + _P_FLOATS], _I64))
_P_NKEYS = len(_P_LISTS) + len(_P_FLOATS)
_P_NFLOATS = len(_P_FLOATS) - 2

@_jit
def _put_key(out, k, i):
    return _put(out, k, _P_KEYS, _P_KOFF[i], _P_KOFF[i + 1])

@_jit
def _predictions_json(tp, e1, e2, flat, pstart, ebstart, ebounds, sym_json, sym_off,
                      local_of, s_loc, stm_eb, loc_json, loc_off, per, jk, heads, head_off,
                      numbers):
    """Write ``orjson.dumps`` of the top predictions' objects, byte for byte, as uint8.

    Prediction u is pattern tp[u] with present events e1[u]:e2[u]. ``heads`` holds each
    object's text from its "{" through its "emotives" value (written by the caller);
    ``numbers`` is orjson's text of the (predictions × 18) float64 matrix of its floats in
    key order, so each float has exactly orjson's spelling. Matches are the state symbols
    of the prediction's matching blocks (``jk``: (start, size) in the state, ``per[u]`` of
    them); missing, the present symbols not matched; extras, each state event's symbols not
    in the present (``stm_eb``: the state events' bounds in the flattened state, whose
    symbols' local ids are ``s_loc``; ``local_of`` maps node ids to them).
    """
    nt = tp.shape[0]
    n = s_loc.shape[0]
    nloc = loc_off.shape[0] - 1
    state_text = 0
    for t in range(n):
        state_text += loc_off[s_loc[t] + 1] - loc_off[s_loc[t]] + 1
    nev = stm_eb.shape[0] - 1
    # An upper bound of the size: the heads and numbers as given, every key, each pattern's
    # events at most four times over (sequence; past, present and future; missing), the state
    # twice (matches, extras) with its brackets.
    size = head_off[nt] + numbers.shape[0] + 2 + nt * (_P_KEYS.shape[0] + _P_TAIL.shape[0] + 16
                                                       + 2 * (state_text + 2 * nev + 4))
    for u in range(nt):
        p = tp[u]
        a = pstart[p]
        for t in range(a, pstart[p + 1]):
            x = flat[t]
            size += 4 * (sym_off[x + 1] - sym_off[x] + 1)
        size += 4 * (3 * (ebstart[p + 1] - ebstart[p]) + 4)
    out = np.empty(size, np.uint8)
    matched = np.zeros(max(nloc, 1), _I64)  # stamp u + 1: the local symbol is matched
    present = np.zeros(max(nloc, 1), _I64)  # stamp u + 1: the local symbol is in the present
    k = 0
    kn = 0  # in ``numbers``: the '[' of the matrix, then the ']' ending each row
    block = 0
    out[k] = 91
    k += 1
    for u in range(nt):
        if u:
            out[k] = 44
            k += 1
        stamp = u + 1
        p = tp[u]
        a = pstart[p]
        b0 = ebstart[p]
        m = ebstart[p + 1] - b0 - 1
        k = _put(out, k, heads, head_off[u], head_off[u + 1])
        # matches
        k = _open_list(out, _put_key(out, k, 0), False)
        first = True
        for r in range(block, block + per[u]):
            for t in range(jk[r, 0], jk[r, 0] + jk[r, 1]):
                x = s_loc[t]
                matched[x] = stamp
                k = _put_item(out, k, first, loc_json, loc_off[x], loc_off[x + 1])
                first = False
        block += per[u]
        k = _close_list(out, k)
        k = _put_key(out, k, 1)
        k = _put_events(out, k, p, 0, e1[u], flat, pstart, ebstart, ebounds, sym_json, sym_off)
        k = _put_key(out, k, 2)
        k = _put_events(out, k, p, e1[u], e2[u], flat, pstart, ebstart, ebounds, sym_json,
                        sym_off)
        # missing: per present event, its symbols not matched
        k = _open_list(out, _put_key(out, k, 3), False)
        for ev in range(e1[u], e2[u]):
            k = _open_list(out, k, ev > e1[u])
            first = True
            for t in range(a + ebounds[b0 + ev], a + ebounds[b0 + ev + 1]):
                x = flat[t]
                lx = local_of[x]
                if lx >= 0:
                    present[lx] = stamp
                    if matched[lx] == stamp:
                        continue
                k = _put_item(out, k, first, sym_json, sym_off[x], sym_off[x + 1])
                first = False
            k = _close_list(out, k)
        k = _close_list(out, k)
        # extras: per state event, its symbols not in the present
        k = _open_list(out, _put_key(out, k, 4), False)
        for ev in range(nev):
            k = _open_list(out, k, ev > 0)
            first = True
            for t in range(stm_eb[ev], stm_eb[ev + 1]):
                x = s_loc[t]
                if present[x] != stamp:
                    k = _put_item(out, k, first, loc_json, loc_off[x], loc_off[x + 1])
                    first = False
            k = _close_list(out, k)
        k = _close_list(out, k)
        # the floats, with "sequence" and "future" after the 7th
        kn += 1  # the row's '['
        for f in range(_P_NFLOATS):
            if f == 7:
                k = _put_key(out, k, 5 + 7)
                k = _put_events(out, k, p, 0, m, flat, pstart, ebstart, ebounds, sym_json,
                                sym_off)
                k = _put_key(out, k, 5 + 8)
                k = _put_events(out, k, p, e2[u], m, flat, pstart, ebstart, ebounds,
                                sym_json, sym_off)
            k = _put_key(out, k, 5 + f + (2 if f >= 7 else 0))
            kn, k = _next_number(numbers, kn + 1, out, k)
        kn += 1  # past the row's ']': the ',' before the next row, or the matrix's ']'
        k = _put(out, k, _P_TAIL, 0, _P_TAIL.shape[0])
        out[k] = 125
        k += 1
    out[k] = 93
    return out[: k + 1]


_HEAD = b'{"type":"prototypical","name":'


def predictions_json(ix, stm, state, top, cp, e1, e2, sim, r_arr, ev, conf, snr, itfdf,
                     pot, confl, tfidf, prob, strength, info, prior, post, freq, local_of, n,
                     pos_ptr, pos, entropies) -> JSONList:
    """Write the top predictions' objects as ``orjson.dumps`` of their list (a compiled
    kernel, the same bytes as building and serialising them). ``entropies``: the top's
    (entropy, normalized_entropy, global_normalized_entropy) arrays (kato-3.10.md §1.4e)."""
    nt = top.shape[0]
    if nt == 0:
        return JSONList(b"[]", 0)
    tp, t1, t2 = cp[top], e1[top], e2[top]
    per, jk, _ = _top_blocks(tp, t1, t2, ix._flat, ix._pstart, ix._ebstart,
                             ix._ebounds, local_of, n, pos_ptr, pos, ix._max_len)
    # Each object's head, through its emotives (the few nonempty ones averaged in Python).
    emotives, dumps, head = ix._emotives, orjson.dumps, _HEAD
    heads = [b"%s%s,\"frequency\":%d,\"emotives\":%s" % (
                 head, dumps(name), f,
                 dumps(mx.average_emotives(emotives[p])) if p in emotives else b"{}")
             for name, p, f in zip(ix._names(tp), tp.tolist(), freq[top].tolist())]
    head_off = np.zeros(nt + 1, _I64)
    np.cumsum(np.fromiter(map(len, heads), _I64, count=nt), out=head_off[1:])
    columns = (pot, ev, sim, (r_arr - 1).astype(np.float64), snr, confl, info, conf, None,
               None, None, itfdf, tfidf, prob, strength, post, prior, sim)
    numbers = np.empty((nt, len(columns)), np.float64)
    for j, column in enumerate(columns):
        if column is not None:
            numbers[:, j] = column[top]
    numbers[:, 8], numbers[:, 9], numbers[:, 10] = entropies
    names, s_loc = state
    local_texts = [dumps(x) for x in names]
    loc_off = np.zeros(len(names) + 1, _I64)
    np.cumsum(np.fromiter(map(len, local_texts), _I64, count=len(names)), out=loc_off[1:])
    stm_eb = np.zeros(len(stm) + 1, _I64)
    np.cumsum(np.fromiter(map(len, stm), _I64, count=len(stm)), out=stm_eb[1:])
    sym_json, sym_off = ix._symbol_json()
    text = _predictions_json(
        tp, t1, t2, ix._flat, ix._pstart, ix._ebstart, ix._ebounds, sym_json, sym_off,
        local_of, s_loc, stm_eb, np.frombuffer(b"".join(local_texts), np.uint8), loc_off, per,
        jk, np.frombuffer(b"".join(heads), np.uint8), head_off,
        np.frombuffer(dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY), np.uint8))
    return JSONList(text.tobytes(), nt)
