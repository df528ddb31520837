"""Render a template with real Apache FreeMarker (Debian's libfreemarker-java) from Python data.

The data model is turned into Java source that builds Maps and Lists directly, so the runner needs
no JSON library: a key whose value is None is left out of its Map (a *missing* field, which is what
aborts careless templates). The runner formats under Locale.GERMANY so that any number printed
without ``?c`` would show a decimal comma and break the JSON.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

JAR_CANDIDATES = (Path("/usr/share/java/freemarker.jar"),)

RUNNER = r"""
import freemarker.template.*;
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class Runner {
    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }
    static List<Object> list(Object... items) { return new ArrayList<>(Arrays.asList(items)); }

    static Object model() {
        return %s;
    }

    public static void main(String[] args) throws Exception {
        Configuration cfg = new Configuration(Configuration.VERSION_2_3_31);
        cfg.setDefaultEncoding("UTF-8");
        cfg.setLocale(Locale.GERMANY);
        cfg.setTemplateExceptionHandler(TemplateExceptionHandler.RETHROW_HANDLER);
        String source = new String(java.nio.file.Files.readAllBytes(java.nio.file.Paths.get(args[0])), StandardCharsets.UTF_8);
        Template t = new Template("export", new StringReader(source), cfg);
        Map<String, Object> root = new HashMap<>();
        root.put("reports", model());
        root.put("addHeader", Boolean.FALSE);
        Writer out = new OutputStreamWriter(new FileOutputStream(args[1]), StandardCharsets.UTF_8);
        t.process(root, out);
        out.close();
    }
}
"""


def java_available() -> str | None:
    """None when FreeMarker can run here, else why not (for pytest.skip)."""
    if not any(p.exists() for p in JAR_CANDIDATES):
        return "Apache FreeMarker is not installed (apt-get install libfreemarker-java)"
    if not shutil.which("javac") or not shutil.which("java"):
        return "javac/java not found"
    return None


def _java_string(text: str) -> str:
    # Java turns \uXXXX escapes into characters *before* lexing (a \u000a would end the literal),
    # so control characters use octal escapes and everything else is written as UTF-8 text.
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):03o}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_java(value: Any) -> str:
    """A Java expression that builds ``value``."""
    if isinstance(value, bool):
        return "Boolean.TRUE" if value else "Boolean.FALSE"
    if isinstance(value, int):
        return f"Long.valueOf({value}L)"
    if isinstance(value, float):
        return f"Double.valueOf({value!r})"
    if isinstance(value, str):
        return _java_string(value)
    if isinstance(value, dt.date):
        return f"java.sql.Date.valueOf({_java_string(value.isoformat())})"
    if isinstance(value, dict):
        parts = [f"{_java_string(k)}, {to_java(v)}" for k, v in value.items() if v is not None]
        return "map(" + ", ".join(parts) + ")"
    if isinstance(value, (list, tuple)):
        return "list(" + ", ".join(to_java(v) for v in value) + ")"
    raise TypeError(f"cannot express {type(value).__name__} in Java")


def render(template: str, reports: list[dict[str, Any]], workdir: Path) -> str:
    """Render ``template`` over ``reports`` with real FreeMarker; returns the output text."""
    workdir.mkdir(parents=True, exist_ok=True)
    jar = next(str(p) for p in JAR_CANDIDATES if p.exists())
    (workdir / "Runner.java").write_text(RUNNER % to_java(reports), encoding="utf-8")
    (workdir / "template.ftl").write_text(template, encoding="utf-8")
    subprocess.run(["javac", "-encoding", "UTF-8", "-cp", jar, "Runner.java"], cwd=workdir, check=True,
                   capture_output=True, text=True)
    subprocess.run(["java", "-cp", os.pathsep.join((".", jar)), "Runner", "template.ftl", "out.txt"], cwd=workdir, check=True,
                   capture_output=True, text=True)
    return (workdir / "out.txt").read_text(encoding="utf-8")
