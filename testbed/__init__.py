"""Real test and demo fixtures: camera footage, an RTSP server and an MQTT broker."""
