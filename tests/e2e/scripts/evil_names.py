# Allocations made by a function and a file whose names are markup: the HTML report must show
# them as text and never run them. The function's code object is renamed (Python allows any
# string there); the file name comes from compile().
SOURCE = """
def hold():
    return bytearray(30_000_000)
"""
EVIL_FUNCTION = "<script>alert(1)</script>"
EVIL_FILE = "<img src=x onerror=alert(2)>.py"

namespace = {}
exec(compile(SOURCE, EVIL_FILE, "exec"), namespace)
hold = namespace["hold"]
hold.__code__ = hold.__code__.replace(co_name=EVIL_FUNCTION, co_qualname=EVIL_FUNCTION)
kept = hold()
print(len(kept))
