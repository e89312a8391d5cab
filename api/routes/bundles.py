"""``POST /v1/bundles``: upload a bundle archive (.zip or .tar.gz); validated, loaded all or nothing."""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, UploadFile

from api.deps import AuditDep, BundleLoader, ServicesDep, StoreDep
from api.problems import PROBLEM_RESPONSES, FieldError, ProblemError
from api.scope import covers_all_plants
from graph_loader.loader import LoadReport

router = APIRouter(prefix="/v1", tags=["data"], responses=PROBLEM_RESPONSES)

#: An archive may expand to at most this many times the upload limit (zip-bomb guard).
EXPANSION_FACTOR = 20
MAX_MEMBERS = 10_000


def _safe_name(name: str) -> PurePosixPath:
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ProblemError(422, f"archive member {name!r} escapes the bundle folder", slug="bad-archive",
                           errors=[FieldError(loc=f"file:{name}", msg="unsafe path in archive")])
    return p


def _extract(archive: Path, filename: str, dest: Path, max_bytes: int) -> None:
    total = 0
    lower = filename.lower()
    try:
        if lower.endswith(".zip") or zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                infos = zf.infolist()
                if len(infos) > MAX_MEMBERS:
                    raise ProblemError(422, f"archive has more than {MAX_MEMBERS} files", slug="bad-archive")
                for info in infos:
                    rel = _safe_name(info.filename)
                    if info.is_dir():
                        continue
                    total += info.file_size
                    if total > max_bytes:
                        raise ProblemError(413, f"archive expands beyond {max_bytes} bytes", slug="too-large")
                    target = dest.joinpath(*rel.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, target.open("wb") as out:
                        shutil.copyfileobj(src, out)
        elif lower.endswith((".tar.gz", ".tgz", ".tar")) or tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tf:
                members = tf.getmembers()
                if len(members) > MAX_MEMBERS:
                    raise ProblemError(422, f"archive has more than {MAX_MEMBERS} files", slug="bad-archive")
                for m in members:
                    rel = _safe_name(m.name)
                    if m.isdir():
                        continue
                    if not m.isfile():
                        raise ProblemError(422, f"archive member {m.name!r} is not a regular file", slug="bad-archive",
                                           errors=[FieldError(loc=f"file:{m.name}", msg="links are not allowed")])
                    total += m.size
                    if total > max_bytes:
                        raise ProblemError(413, f"archive expands beyond {max_bytes} bytes", slug="too-large")
                    target = dest.joinpath(*rel.parts)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    member = tf.extractfile(m)
                    assert member is not None
                    with member, target.open("wb") as out:
                        shutil.copyfileobj(member, out)
        else:
            raise ProblemError(422, f"{filename!r}: expected a .zip or .tar.gz bundle archive", slug="bad-archive",
                               errors=[FieldError(loc="body.file", msg="not a zip or tar archive")])
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise ProblemError(422, f"{filename!r}: unreadable archive ({exc})", slug="bad-archive",
                           errors=[FieldError(loc="body.file", msg=str(exc))]) from None


def _bundle_root(dest: Path) -> Path:
    """manifest.json at the top, or inside the archive's single top-level folder."""
    if (dest / "manifest.json").exists():
        return dest
    subdirs = [p for p in dest.iterdir() if p.is_dir()]
    if len(subdirs) == 1 and (subdirs[0] / "manifest.json").exists():
        return subdirs[0]
    raise ProblemError(422, "the archive holds no manifest.json (at its top or in its one top-level folder)",
                       slug="bundle-invalid", errors=[FieldError(loc="manifest.json", msg="missing")])


@router.post("/bundles", response_model=LoadReport, summary="Load a bundle archive (admin, all plants)")
async def load_bundle_archive(
    file: Annotated[UploadFile, File(description="the bundle as .zip or .tar.gz")],
    principal: BundleLoader, store: StoreDep, services: ServicesDep, audit: AuditDep,
) -> LoadReport:
    from graph_loader.errors import BundleError, BundleValidationError
    from graph_loader.loader import load_bundle

    audit.kind = "bundle"
    name = file.filename or "bundle"
    audit.params = {"filename": name}
    if not covers_all_plants(store, principal):
        raise ProblemError(403, "bundles may hold any plant's data; loading needs an admin key that sees every plant",
                           slug="forbidden")
    limit = services.settings.max_body_bytes
    with tempfile.TemporaryDirectory(prefix="plantgraph-upload-") as tmp:
        archive = Path(tmp) / "upload"
        with archive.open("wb") as out:
            shutil.copyfileobj(file.file, out)
        dest = Path(tmp) / "bundle"
        dest.mkdir()
        _extract(archive, name, dest, limit * EXPANSION_FACTOR)
        root = _bundle_root(dest)
        try:
            report = load_bundle(store, root, exclusive=False)  # requests beside it keep reading
        except BundleValidationError as exc:
            errors = [FieldError(loc=f"{e.file}:{e.line}:{e.column}", msg=str(e), type="bundle")
                      for e in exc.errors]
            more = exc.total - len(exc.errors)
            raise ProblemError(
                422, f"the bundle has {exc.total} error(s); nothing was loaded"
                + (f" ({more} more not listed)" if more > 0 else ""),
                slug="bundle-invalid", errors=errors,
            ) from None
        except BundleError as exc:
            raise ProblemError(422, f"{exc}; nothing was loaded", slug="bundle-invalid") from None
    report.bundle = name
    audit.detail = f"loaded {report.nodes} entities, {report.edges} relations"
    services.graph_changed([])
    return report
