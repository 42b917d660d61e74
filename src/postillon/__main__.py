from postillon.cli.main import app

app()
