"""Writes sales_orders.xlsx, the hand-written Excel example (kept so the binary is reproducible)."""

from datetime import datetime
from pathlib import Path

from openpyxl import Workbook

ROWS = [
    ("SO", "Date", "Customer no", "Customer", "Item", "Material", "Qty", "Due", "Prio"),
    ("SO-7001", datetime(2026, 2, 20), "C-10", "Café Nord GmbH", 1, "300-100", 120, datetime(2026, 3, 6), "HIGH"),
    ("SO-7001", datetime(2026, 2, 20), "C-10", "Café Nord GmbH", 2, "300-200", 60, datetime(2026, 3, 6), "NORMAL"),
    ("SO-7002", datetime(2026, 2, 22), "C-20", "Bäckerei Süd", 1, "300-100", 40, "13.03.2026", "LOW"),
]


def main() -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "Orders"
    for row in ROWS:
        ws.append(row)
    wb.save(Path(__file__).with_name("sales_orders.xlsx"))


if __name__ == "__main__":
    main()
