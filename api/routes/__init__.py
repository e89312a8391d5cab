"""Thin routes: parse, check scope, call the domain code, shape the response."""
