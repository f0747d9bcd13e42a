"""The field's standards: CAP 1.2, EDXL-RM 1.0 and GeoJSON, and safe XML parsing."""
