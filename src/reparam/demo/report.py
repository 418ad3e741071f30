"""A markdown report assembled section by section, with its PNG figures beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Report:
    """Collects markdown blocks and figures, then writes ``report.md`` into ``folder``."""

    folder: Path
    title: str
    blocks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(f"{'#' * level} {text}")

    def text(self, markdown: str) -> None:
        self.blocks.append(markdown.strip())

    def figure(self, filename: str, caption: str) -> Path:
        """Reference ``filename`` (already written into ``folder``) with a caption."""
        self.blocks.append(f"![{caption}]({filename})\n\n*{caption}*")
        return self.folder / filename

    def write(self) -> Path:
        path = self.folder / "report.md"
        path.write_text(f"# {self.title}\n\n" + "\n\n".join(self.blocks) + "\n")
        return path
