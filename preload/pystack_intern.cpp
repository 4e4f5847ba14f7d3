// Interning for the Python stack walker: str objects read as UTF-8 straight from memory, code
// objects verified against address reuse, (code, offset) -> location, (parent, location) ->
// stack node. New ids come from process-wide counters and are defined to the sink at once.
#include "pystack_cache.hpp"
// pystack_cache.hpp brings Python.h first.
#include <atomic>
#include <cstring>

namespace pmt::preload::pystack {

namespace {

// Unique per process (FORMAT.md), one counter per kind, from 1.
std::atomic<uint64_t> g_next_string{1}, g_next_location{1}, g_next_stack{1};

uint64_t next_id(std::atomic<uint64_t>& counter) {
    return counter.fetch_add(1, std::memory_order_relaxed);
}

// Appends code point cp as UTF-8; lone surrogates (surrogateescape'd file names) become U+FFFD.
char* put_utf8(char* p, uint32_t cp) {
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    if (cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) {
        *p++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
        *p++ = static_cast<char>(0xC0 | cp >> 6);
        *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *p++ = static_cast<char>(0xE0 | cp >> 12);
        *p++ = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        *p++ = static_cast<char>(0xF0 | cp >> 18);
        *p++ = static_cast<char>(0x80 | (cp >> 12 & 0x3F));
        *p++ = static_cast<char>(0x80 | (cp >> 6 & 0x3F));
        *p++ = static_cast<char>(0x80 | (cp & 0x3F));
    }
    return p;
}

// UTF-8 of a str object read straight from its memory: PyUnicode_AsUTF8 may allocate and needs
// the GIL, which this thread may not hold. Returns the length written to out; "?" when o is
// not a ready str.
size_t read_unicode(const PyObject* o, char* out) {
    if (!o || !(Py_TYPE(o)->tp_flags & Py_TPFLAGS_UNICODE_SUBCLASS)) return out[0] = '?', 1;
    auto* a = reinterpret_cast<const PyASCIIObject*>(o);
    unsigned kind = a->state.kind;
    const void* data;
    if (a->state.compact) {
        data = a->state.ascii ? static_cast<const void*>(a + 1)
                              : reinterpret_cast<const PyCompactUnicodeObject*>(o) + 1;
    } else {  // a legacy string: its characters are in a separate block
        data = reinterpret_cast<const PyUnicodeObject*>(o)->data.any;
    }
    if (!a->state.ready || !data || (kind != 1 && kind != 2 && kind != 4)) return out[0] = '?', 1;
    size_t n = a->length < 0 ? 0 : static_cast<size_t>(a->length);
    if (n > kMaxNameChars) n = kMaxNameChars;
    if (a->state.ascii) {
        std::memcpy(out, data, n);
        return n;
    }
    char* p = out;
    for (size_t i = 0; i < n; ++i) {
        p = put_utf8(p, kind == 1   ? static_cast<const uint8_t*>(data)[i]
                        : kind == 2 ? static_cast<const uint16_t*>(data)[i]
                                    : static_cast<const uint32_t*>(data)[i]);
    }
    return static_cast<size_t>(p - out);
}

// Whether str object o reads as text (the common ASCII case compares in place).
bool unicode_equals(PyStackCache* c, const PyObject* o, const char* text, size_t len) {
    auto* a = reinterpret_cast<const PyASCIIObject*>(o);
    if ((Py_TYPE(o)->tp_flags & Py_TPFLAGS_UNICODE_SUBCLASS) && a->state.compact &&
        a->state.ascii && a->state.ready && size_t(a->length) <= kMaxNameChars) {
        return size_t(a->length) == len && std::memcmp(a + 1, text, len) == 0;
    }
    return read_unicode(o, c->utf8) == len && std::memcmp(c->utf8, text, len) == 0;
}

// The bytes of a bytes object (the line table), or false when o is not one.
bool bytes_of(const PyObject* o, const char*& data, size_t& len) {
    if (!o || !(Py_TYPE(o)->tp_flags & Py_TPFLAGS_BYTES_SUBCLASS) || Py_SIZE(o) < 0) return false;
    data = reinterpret_cast<const PyBytesObject*>(o)->ob_sval;
    len = static_cast<size_t>(Py_SIZE(o));
    return true;
}

// The string id of o's text; *text/*len point at the interned copy.
uint64_t intern_string(PyStackCache* c, const PyObject* o, const char** text, uint32_t* len,
                       DefinitionSink& sink) {
    size_t n = read_unicode(o, c->utf8);
    const char* s = c->utf8;
    uint64_t h = hash_bytes(s, n);
    StringKey* e = c->strings.find(h, [&](const StringKey& k) {
        return k.h == h && k.len == n && std::memcmp(k.text, s, n) == 0;
    });
    if (!e) return 0;
    if (!e->id) {
        const char* copy = c->text.copy(s, n);
        if (!copy) return 0;
        *e = StringKey{h, copy, n, next_id(g_next_string)};
        c->strings.inserted();
        sink.define_string(e->id, copy, n);
    }
    *text = e->text;
    *len = static_cast<uint32_t>(e->len);
    return e->id;
}

bool same_code(PyStackCache* c, const CodeInfo& k, const PyCodeObject* code,
               const PyObject* linetable) {
    const char* lt;
    size_t lt_len;
    return k.filename == code->co_filename && k.qualname == code->co_qualname &&
           k.linetable == linetable && k.firstlineno == code->co_firstlineno &&
           bytes_of(linetable, lt, lt_len) && lt_len == k.linetable_len &&
           std::memcmp(lt, k.linetable_copy, lt_len) == 0 &&
           unicode_equals(c, code->co_filename, k.file_text, k.file_len) &&
           unicode_equals(c, code->co_qualname, k.function_text, k.function_len);
}

// This thread's serial for the code object, recording (or re-recording) it when new.
uint64_t code_serial(PyStackCache* c, const PyCodeObject* code, const PyObject* linetable,
                     DefinitionSink& sink) {
    CodeInfo* e = c->codes.find(mix64(reinterpret_cast<uintptr_t>(code)),
                                [&](const CodeInfo& k) { return k.code == code; });
    if (!e) return 0;
    if (e->id && (e->checked_generation == c->generation || same_code(c, *e, code, linetable))) {
        e->checked_generation = c->generation;
        return e->id;
    }
    CodeInfo info{};
    info.code = code;
    info.filename = code->co_filename;
    info.qualname = code->co_qualname;
    info.linetable = linetable;
    info.firstlineno = code->co_firstlineno;
    info.checked_generation = c->generation;
    const char* lt;
    size_t lt_len;
    if (!bytes_of(linetable, lt, lt_len) || lt_len > UINT32_MAX) return 0;
    info.linetable_len = static_cast<uint32_t>(lt_len);
    info.linetable_copy = c->text.copy(lt, lt_len);
    info.file_id = intern_string(c, code->co_filename, &info.file_text, &info.file_len, sink);
    info.function_id =
        intern_string(c, code->co_qualname, &info.function_text, &info.function_len, sink);
    if (!info.linetable_copy || !info.file_id || !info.function_id) return 0;
    bool reused = e->id != 0;  // a dead code object's slot: replace it in place
    info.id = c->next_code_serial++;
    *e = info;  // e is still valid: only the string table and the arena were touched
    if (!reused) c->codes.inserted();
    return info.id;
}

// First use of (code, offset) in this thread: the line and the location id. The line comes
// from this thread's copy of the line table (verified equal to the code's), read on from
// where the previous look-up in this code object stopped: a module body or function that
// allocates on its way down asks for increasing offsets.
[[gnu::cold]] uint64_t resolve_location(PyStackCache* c, CodeInfo& info, int64_t offset,
                                        DefinitionSink& sink) {
    int line = info.firstlineno;
    if (offset >= 0 && offset < Py_SIZE(info.code)) {
        line = linetable_line(reinterpret_cast<const unsigned char*>(info.linetable_copy),
                              info.linetable_len, info.firstlineno, info.lines,
                              static_cast<int32_t>(offset));
    }
    uint64_t line_u = line < 0 ? 0 : static_cast<uint64_t>(line);
    LocationKey key{info.file_id, info.function_id, line_u, 0};
    LocationKey* e = c->locations.find(key.hash(), [&](const LocationKey& k) {
        return k.file_id == key.file_id && k.function_id == key.function_id && k.line == line_u;
    });
    if (!e) return 0;
    if (!e->id) {
        key.id = next_id(g_next_location);
        *e = key;
        c->locations.inserted();
        sink.define_location(key.id, key.file_id, key.function_id, line_u);
    }
    return e->id;
}

}  // namespace

uint64_t location_id(PyStackCache* c, const Level& l, uint64_t& serial, DefinitionSink& sink) {
    int64_t offset = l.instr - _PyCode_CODE(l.code);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (!serial) serial = code_serial(c, l.code, l.code->co_linetable, sink);
        if (!serial) return 0;
        CodeOffset key{serial, offset, 0};
        CodeOffset* e = c->offsets.find(key.hash(), [&](const CodeOffset& k) {
            return k.serial == serial && k.offset == offset;
        });
        if (!e) return 0;
        if (e->id) return e->id;
        CodeInfo* info = c->codes.find(mix64(reinterpret_cast<uintptr_t>(l.code)),
                                       [&](const CodeInfo& k) { return k.code == l.code; });
        if (!info || info->id != serial) {  // the caller's serial was stale: look it up
            serial = 0;
            continue;
        }
        uint64_t id = resolve_location(c, *info, offset, sink);
        if (!id) return 0;
        key.id = id;
        *e = key;  // e is still valid: only the other tables were touched since find()
        c->offsets.inserted();
        return id;
    }
    return 0;
}

uint64_t code_serial_of(PyStackCache* c, const PyCodeObject* code, DefinitionSink& sink) {
    return code_serial(c, code, code->co_linetable, sink);
}

uint64_t stack_node(PyStackCache* c, uint64_t parent, uint64_t location, DefinitionSink& sink) {
    StackKey key{parent, location, 0};
    StackKey* e = c->stacks.find(key.hash(), [&](const StackKey& k) {
        return k.parent == parent && k.location_id == location;
    });
    if (!e) return 0;
    if (!e->id) {
        key.id = next_id(g_next_stack);
        *e = key;
        c->stacks.inserted();
        sink.define_stack(key.id, parent, location);
    }
    return e->id;
}

void reset_id_counters() {
    g_next_string.store(1, std::memory_order_relaxed);
    g_next_location.store(1, std::memory_order_relaxed);
    g_next_stack.store(1, std::memory_order_relaxed);
}

}  // namespace pmt::preload::pystack
