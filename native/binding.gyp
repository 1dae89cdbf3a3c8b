{
  "targets": [
    {
      "target_name": "chimney_tap",
      "sources": ["tap.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    },
    {
      "target_name": "chimney_repair",
      "sources": ["repair.c", "steer.c", "pdk.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
