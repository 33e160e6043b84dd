"""Fresh evidence (issue 22): is each control's evidence recent enough, and collecting it again."""
